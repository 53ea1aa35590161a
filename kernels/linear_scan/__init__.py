"""Diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (decays in log space), shared by the RG-LRU
(Hawk, Griffin) and Mega's damped EMA.

- ``linear_scan_ref`` / ``linear_scan_step`` (``naive.py``): fp32 token-by-token reference and one step.
- ``linear_scan`` (``chunk.py``): doubling scan within chunks, state carried across chunks, custom
  backward (the reverse recurrence).
"""

from __future__ import annotations

import torch

from kernels.catalog import OpCase
from kernels.linear_scan.chunk import linear_scan
from kernels.linear_scan.naive import linear_scan_ref, linear_scan_step

CHANNELS_PER_HEAD = 32  # the catalog's "heads" knob: N = heads * 32 channels


def make_inputs(batch: int, seq_len: int, heads: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """RG-LRU-like ranges: per-step decays a in about [0.37, 1) (log_a in [-1, 0)), a few near 0."""
    N = heads * CHANNELS_PER_HEAD
    log_a = -(torch.rand(batch, seq_len, N, generator=generator) ** 2)
    log_a[..., ::7] *= 20.0  # strong decays: a down to e^-20, which a naive cumsum form would overflow on
    b = torch.randn(batch, seq_len, N, generator=generator)
    h0 = torch.randn(batch, N, generator=generator)
    return {
        "log_a": log_a.requires_grad_(),
        "b_BTN": b.requires_grad_(),
        "h0_BN": h0.requires_grad_(),
    }


CASES = [
    OpCase(
        name="linear_scan",
        make_inputs=make_inputs,
        reference=linear_scan_ref,
        fast=linear_scan,
        fast_kwargs={"chunk_size": 16},
    )
]

__all__ = ["CASES", "linear_scan", "linear_scan_ref", "linear_scan_step"]
