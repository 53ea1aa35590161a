"""The delta-rule family: the gated delta rule (Gated DeltaNet) and the generalised, diagonal-plus-rank-one
delta rule (RWKV-7). ``naive`` holds the fp32 token-by-token references (the spec), ``chunk`` the
chunkwise-parallel forms used for training; see their docstrings for the recurrences."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from kernels.catalog import OpCase
from kernels.delta.chunk import chunk_gated_delta_rule, chunk_generalized_delta_rule
from kernels.delta.naive import (
    gated_delta_rule_ref,
    gated_delta_rule_step,
    generalized_delta_rule_ref,
    generalized_delta_rule_step,
)

__all__ = [
    "CASES",
    "chunk_gated_delta_rule",
    "chunk_generalized_delta_rule",
    "gated_delta_rule_ref",
    "gated_delta_rule_step",
    "generalized_delta_rule_ref",
    "generalized_delta_rule_step",
]


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().requires_grad_(True)


def make_gated_delta_inputs(
    batch: int,
    seq_len: int,
    heads: int,
    generator: torch.Generator,
    *,
    key_dim: int = 16,
    value_dim: int = 32,
) -> dict[str, Any]:
    """Gated DeltaNet-like inputs: L2-normalised q/k (q scaled by K^-1/2), beta = sigmoid, log decay
    g = logsigmoid (mostly -0.01..-1, a tail of fast decays), a random initial state; all need grads."""

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    B, T, H, K, V = batch, seq_len, heads, key_dim, value_dim
    return {
        "q_BTHK": _leaf(F.normalize(randn(B, T, H, K), dim=-1) * K**-0.5),
        "k_BTHK": _leaf(F.normalize(randn(B, T, H, K), dim=-1)),
        "v_BTHV": _leaf(randn(B, T, H, V)),
        "g_BTH": _leaf(F.logsigmoid(1.5 * randn(B, T, H) + 2.0)),
        "beta_BTH": _leaf(torch.sigmoid(randn(B, T, H))),
        "initial_state": _leaf(0.5 * randn(B, H, K, V)),
    }


def make_rwkv7_inputs(
    batch: int, seq_len: int, heads: int, generator: torch.Generator, *, head_dim: int = 16
) -> dict[str, Any]:
    """RWKV-7-like inputs: log decay w = -0.6065 sigmoid(.) (the official soft clamp), removal key
    kk (unit norm), a = -kk, b = kk * iclr with iclr = sigmoid(.), a random initial state."""

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    B, T, H, N = batch, seq_len, heads, head_dim
    kk = F.normalize(randn(B, T, H, N), dim=-1)
    iclr = torch.sigmoid(randn(B, T, H, N))
    return {
        "r_BTHK": _leaf(randn(B, T, H, N) * N**-0.5),
        "w_BTHK": _leaf(-0.606531 * torch.sigmoid(2.0 * randn(B, T, H, N))),
        "k_BTHK": _leaf(randn(B, T, H, N) * N**-0.5),
        "v_BTHV": _leaf(randn(B, T, H, N)),
        "a_BTHK": _leaf(-kk),
        "b_BTHK": _leaf(kk * iclr),
        "initial_state": _leaf(0.5 * randn(B, H, N, N)),
    }


CASES = [
    OpCase(
        name="gated_delta_rule",
        make_inputs=make_gated_delta_inputs,
        reference=gated_delta_rule_ref,
        fast=chunk_gated_delta_rule,
        fast_kwargs={"chunk_size": 16},
    ),
    OpCase(
        name="generalized_delta_rule",
        make_inputs=make_rwkv7_inputs,
        reference=generalized_delta_rule_ref,
        fast=chunk_generalized_delta_rule,
        fast_kwargs={"chunk_size": 16},
    ),
]
