"""Validation loss (nats per token) and bits per byte on fixed held-out windows, sharded over workers."""

from __future__ import annotations

import math

import numpy as np
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


# --- in-context copy score ------------------------------------------------------------------------------
# Recall on the language models themselves: a random span of a held-out window is written again later in
# the same window; a model that can look back and copy predicts the second occurrence far better than the
# first. Every architecture sees exactly the same contexts (fixed seed, the same validation windows).
COPY_SPAN_MIN, COPY_SPAN_MAX = 16, 256  # span lengths in tokens, capped at seq_len // 2
COPY_CONTEXTS = 32  # held-out windows used (or every window, if fewer)
COPY_SEED = 20240601


def copy_contexts(
    windows_NT1: torch.Tensor, *, contexts: int = COPY_CONTEXTS, seed: int = COPY_SEED
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens[N,T+1], first[N,T], second[N,T])``: windows with a span repeated, and boolean masks of the
    target positions (columns of ``tokens[:, 1:]``) scored on the span's first and second occurrence.

    Per window: span length ``L`` uniform in ``[min(16, cap), cap]`` with ``cap = min(256, T // 2)``;
    first start ``p1`` uniform in ``[0, T + 1 - 2L]``, second ``p2`` uniform in ``[p1 + L, T + 1 - L]``;
    ``tokens[p2 : p2 + L] = tokens[p1 : p1 + L]``. Both masks cover the span's tokens 2..L (its first
    token cannot be predicted either time), so the two losses are over the same tokens.
    """
    count = min(contexts, len(windows_NT1))
    picks = np.linspace(0, len(windows_NT1) - 1, count).round().astype(np.int64)
    tokens_NT1 = windows_NT1[torch.from_numpy(picks)].clone()
    T = tokens_NT1.shape[1] - 1
    first_NT = torch.zeros(count, T, dtype=torch.bool)
    second_NT = torch.zeros(count, T, dtype=torch.bool)
    cap = min(COPY_SPAN_MAX, T // 2)
    rng = np.random.default_rng(seed)
    for i in range(count):
        span = int(rng.integers(min(COPY_SPAN_MIN, cap), cap + 1))
        p1 = int(rng.integers(0, T + 1 - 2 * span + 1))
        p2 = int(rng.integers(p1 + span, T + 1 - span + 1))
        tokens_NT1[i, p2 : p2 + span] = tokens_NT1[i, p1 : p1 + span]
        # target column c predicts tokens[c + 1]: span tokens 2..L sit at p + 1 .. p + L - 1
        first_NT[i, p1 : p1 + span - 1] = True
        second_NT[i, p2 : p2 + span - 1] = True
    return tokens_NT1, first_NT, second_NT


@torch.no_grad()
def copy_score(
    engine,
    windows_NT1: torch.Tensor,
    *,
    rank: int = 0,
    world: int = 1,
    batch_size: int = 16,
    device: torch.device | None = None,
    contexts: int = COPY_CONTEXTS,
) -> dict[str, float]:
    """In-context copy score of a language model, in [0, 1], higher is better.

    ``copy_loss_first`` / ``copy_loss_second``: mean next-token loss (nats) on a random span's first and
    second occurrence in held-out windows (see :func:`copy_contexts`);
    ``copy_score = clip(1 - copy_loss_second / copy_loss_first, 0, 1)``: 0 when the repeat is no easier
    than the first time (no use of the context), 1 when the repeat is predicted perfectly.
    """
    device = device or torch.device("cpu")
    tokens_NT1, first_NT, second_NT = copy_contexts(windows_NT1, contexts=contexts)
    count = len(tokens_NT1)
    sharded = count >= world
    per_rank = count // world if sharded else count
    start = rank * per_rank if sharded else 0
    was_training = engine.training
    engine.eval()
    total = torch.zeros(4, dtype=torch.float64)  # first loss sum, first count, second loss sum, second count
    for b in range(start, start + per_rank, batch_size):
        stop = min(b + batch_size, start + per_rank)
        chunk = tokens_NT1[b:stop].to(device)
        logits_BTV = engine(chunk[:, :-1])
        loss_BT = (
            F.cross_entropy(logits_BTV.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="none")
            .view(chunk.shape[0], -1)
            .cpu()
            .double()
        )
        first, second = first_NT[b:stop], second_NT[b:stop]
        total += torch.stack(
            [loss_BT[first].sum(), first.sum(), loss_BT[second].sum(), second.sum()]
        ).double()
    if world > 1:
        dist.all_reduce(total)
        if not sharded:
            total /= world
    if was_training:
        engine.train()
    first_loss, second_loss = (total[0] / total[1]).item(), (total[2] / total[3]).item()
    score = min(max(1.0 - second_loss / first_loss, 0.0), 1.0) if first_loss > 0 else 0.0
    return {"copy_score": score, "copy_loss_first": first_loss, "copy_loss_second": second_loss}
