"""Gated linear attention with a diagonal decay, one op covering the family:

- decay per head ``g: [B, T, H]``: RetNet (fixed ``log(1 - 2^(-5-h))``), Mamba-2 SSD (``dt * A``, with
  ``C`` as queries, ``B`` as keys, ``x * dt`` as values);
- decay per key channel ``g: [B, T, H, K]``: GLA (``logsigmoid(.) / 16``), RWKV-6 (``-exp(w)``);
- optional bonus ``u_HK`` for the current token (RWKV-6), which also makes the read exclusive.

One function with options rather than one per model: the recurrence, the state layout and the inter-chunk
carry are the same; only the intra-chunk pair term differs (exact ``C x C`` decay matrix per head, secondary
chunking per channel). ``naive`` holds the fp32 references (``gla_ref``, ``gla_step``), ``chunk`` the
chunkwise-parallel form (``chunk_gla``) and its flop count.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from kernels.catalog import OpCase
from kernels.gla.chunk import chunk_gla, chunk_gla_flops_per_token
from kernels.gla.naive import gla_ref, gla_step

__all__ = [
    "CASES",
    "chunk_gla",
    "chunk_gla_flops_per_token",
    "gla_ref",
    "gla_step",
    "make_head_decay_inputs",
    "make_channel_decay_inputs",
    "make_rwkv6_inputs",
]


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_(True)


def _qkv(B: int, T: int, H: int, K: int, V: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "q_BTHK": _leaf(torch.randn(B, T, H, K, generator=generator) * K**-0.5),
        "k_BTHK": _leaf(torch.randn(B, T, H, K, generator=generator)),
        "v_BTHV": _leaf(torch.randn(B, T, H, V, generator=generator)),
    }


def make_head_decay_inputs(
    batch: int,
    seq_len: int,
    heads: int,
    generator: torch.Generator,
    *,
    key_dim: int = 32,
    value_dim: int = 32,
) -> dict[str, Any]:
    """One log decay per head: Mamba-2-like ``-softplus(.) * A`` with A in [1, 16] (from near 0 to a few
    strong decays of -20 and more), a random initial state."""
    B, T, H = batch, seq_len, heads
    A = 1.0 + 15.0 * torch.rand(H, generator=generator)
    g = -F.softplus(2.0 * torch.randn(B, T, H, generator=generator) - 3.0) * A
    return {
        **_qkv(B, T, H, key_dim, value_dim, generator),
        "g": _leaf(g),
        "initial_state": _leaf(0.5 * torch.randn(B, H, key_dim, value_dim, generator=generator)),
    }


def make_channel_decay_inputs(
    batch: int,
    seq_len: int,
    heads: int,
    generator: torch.Generator,
    *,
    key_dim: int = 32,
    value_dim: int = 32,
    strength: float = 1.0,
) -> dict[str, Any]:
    """One log decay per key channel, GLA-like ``logsigmoid(.) / 16`` (mostly -0.01..-0.3 per token, a
    tail towards -1); ``strength`` multiplies every fifth channel (the op tests use 100: -30 per token
    and more, the regime where split factors would overflow)."""
    B, T, H, K = batch, seq_len, heads, key_dim
    g = F.logsigmoid(3.0 * torch.randn(B, T, H, K, generator=generator) + 1.0) / 16
    g[..., ::5] = g[..., ::5] * strength
    return {
        **_qkv(B, T, H, K, value_dim, generator),
        "g": _leaf(g),
        "initial_state": _leaf(0.5 * torch.randn(B, H, K, value_dim, generator=generator)),
    }


def make_rwkv6_inputs(
    batch: int,
    seq_len: int,
    heads: int,
    generator: torch.Generator,
    *,
    key_dim: int = 32,
    value_dim: int = 32,
    w_max: float = -0.5,
) -> dict[str, Any]:
    """RWKV-6-like: per-channel log decay ``-exp(w)`` with w uniform in [-6, w_max] (the official init
    spans [-6, -1]; the op tests raise ``w_max`` to 3, i.e. -20 per token), unscaled receptance,
    bonus ``u`` ~ N(0, 0.5)."""
    B, T, H, K = batch, seq_len, heads, key_dim
    w = -6.0 + (w_max + 6.0) * torch.rand(B, T, H, K, generator=generator)
    return {
        **_qkv(B, T, H, K, value_dim, generator),
        "g": _leaf(-w.exp()),
        "u_HK": _leaf(0.5 * torch.randn(H, K, generator=generator)),
        "initial_state": _leaf(0.5 * torch.randn(B, H, K, value_dim, generator=generator)),
    }


CASES = [
    OpCase(
        name="gla_head_decay",
        make_inputs=make_head_decay_inputs,
        reference=gla_ref,
        fast=chunk_gla,
        fast_kwargs={"chunk_size": 16},
    ),
    OpCase(
        name="gla_channel_decay",
        make_inputs=make_channel_decay_inputs,
        reference=gla_ref,
        fast=chunk_gla,
        fast_kwargs={"chunk_size": 16},
    ),
    OpCase(
        name="gla_channel_decay_bonus",
        make_inputs=make_rwkv6_inputs,
        reference=gla_ref,
        fast=chunk_gla,
        fast_kwargs={"chunk_size": 16},
    ),
]
