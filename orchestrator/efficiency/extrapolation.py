"""Length extrapolation: validation loss at 1x, 2x, 4x, 8x the training length, overall and by position.

A model trained on ``train_len`` tokens is evaluated on non-overlapping windows of ``train_len x f`` tokens
of held-out text (the first windows of ``val_tokens``, at most ``max_tokens`` predicted tokens per length),
with the training forward. The loss by position bucket (``[0, e1), [e1, e2), ...``, powers of two with one
edge at ``train_len``) shows whether a model keeps improving past its training length or collapses there.
Past ``train_len`` the Transformer's RoPE is computed for any position (no index error) but at angles it
never saw in training; recurrent models carry a state of fixed size, so nothing breaks mechanically
either. What happens to the loss is the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

# tokens per forward pass: bounds the memory of logits [B, T, V] and activations at long lengths
TOKENS_PER_FORWARD = 16384


@dataclass(frozen=True)
class ExtrapolationCurve:
    train_len: int
    lengths: tuple[int, ...]  # e.g. 1x, 2x, 4x, 8x train_len
    loss: tuple[float, ...]  # mean val loss over all positions at each length
    bucket_edges: tuple[int, ...]  # position buckets [edges[i], edges[i+1]); powers of two, one at train_len
    bucket_loss: dict[int, tuple[float, ...]]  # length -> mean loss per position bucket (nan where empty)


def position_bucket_edges(train_len: int, longest: int) -> tuple[int, ...]:
    """``0`` then powers of two times ``train_len / 8`` (at least 1) up to ``longest``; ``train_len`` is an
    edge whenever it is a power-of-two multiple of that first edge (e.g. 512: 0, 64, 128, ..., 4096)."""
    first = max(1, train_len // 8)
    edges = [0]
    edge = first
    while edge < longest:
        edges.append(edge)
        edge *= 2
    edges.append(longest)
    return tuple(edges)


def _per_position_loss(model: Any, windows_NT1: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss at each position over the windows: ``[T]`` fp64 (inputs ``[:, :-1]``)."""
    N, T = windows_NT1.shape[0], windows_NT1.shape[1] - 1
    per_forward = max(1, TOKENS_PER_FORWARD // T)
    total_T = torch.zeros(T, dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, N, per_forward):
            batch_BT1 = windows_NT1[start : start + per_forward]
            logits_BTV = model(batch_BT1[:, :-1])
            loss_BT = F.cross_entropy(logits_BTV.float().transpose(1, 2), batch_BT1[:, 1:], reduction="none")
            total_T += loss_BT.double().sum(dim=0).cpu()
    return total_T / N


def evaluate_extrapolation(
    model: Any,
    val_tokens: torch.Tensor,
    *,
    train_len: int,
    factors: Sequence[int] = (1, 2, 4, 8),
    max_tokens: int = 65536,
) -> ExtrapolationCurve:
    """Val loss of ``model`` at ``train_len x f`` for each factor, overall and per position bucket.

    ``val_tokens``: 1-D token ids (a 2-D tensor is flattened row by row). Each length uses
    ``min(max_tokens // length, (len(val_tokens) - 1) // length)`` windows, at least one; ``ValueError``
    when ``val_tokens`` is too short for the longest length.
    """
    for name, value in (("train_len", train_len), ("max_tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not factors or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in factors):
        raise ValueError(f"factors must be positive ints, e.g. (1, 2, 4, 8), got {tuple(factors)!r}")
    tokens = val_tokens.reshape(-1).long()
    lengths = tuple(sorted({train_len * f for f in factors}))
    if tokens.numel() < lengths[-1] + 1:
        raise ValueError(
            f"val_tokens holds {tokens.numel()} tokens, but length {lengths[-1]} (train_len {train_len} x "
            f"{lengths[-1] // train_len}) needs {lengths[-1] + 1}: pass more validation tokens or smaller factors"
        )
    device = next(model.parameters()).device
    edges = position_bucket_edges(train_len, lengths[-1])
    losses: list[float] = []
    bucket_loss: dict[int, tuple[float, ...]] = {}
    for length in lengths:
        n_windows = max(1, min(max_tokens // length, (tokens.numel() - 1) // length))
        starts = torch.arange(n_windows) * length
        windows_NT1 = torch.stack([tokens[s : s + length + 1] for s in starts.tolist()]).to(device)
        loss_T = _per_position_loss(model, windows_NT1)
        losses.append(float(loss_T.mean()))
        bucket_loss[length] = tuple(
            float(loss_T[lo:hi].mean()) if lo < min(hi, length) else math.nan
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        )
    return ExtrapolationCurve(
        train_len=train_len,
        lengths=lengths,
        loss=tuple(losses),
        bucket_edges=edges,
        bucket_loss=bucket_loss,
    )
