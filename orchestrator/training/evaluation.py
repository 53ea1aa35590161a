"""Validation loss (nats per token) and bits per byte on fixed held-out windows, sharded over workers."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F


@torch.no_grad()
def evaluate(
    engine,
    windows_NT1: torch.Tensor,
    *,
    rank: int,
    world: int,
    batch_size: int,
    bytes_per_token: float,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> dict[str, float]:
    """Mean next-token loss over ``windows``. Every rank runs the same number of forwards (ZeRO-3 needs it)."""
    per_rank = len(windows_NT1) // world
    mine = windows_NT1[rank * per_rank : (rank + 1) * per_rank]
    was_training = engine.training
    engine.eval()
    total = torch.zeros(2, dtype=torch.float64)
    for start in range(0, per_rank, batch_size):
        chunk = mine[start : start + batch_size].to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits_BTV = engine(chunk[:, :-1])
        loss = F.cross_entropy(logits_BTV.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum")
        total += torch.tensor([loss.item(), chunk[:, 1:].numel()], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(total)
    if was_training:
        engine.train()
    loss = (total[0] / total[1]).item()
    return {"val_loss": loss, "val_bpb": loss / math.log(2) / bytes_per_token}
