"""Mamba's selective scan: ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t``, ``y_t = C_t . h_t + D x_t`` with a
state ``[B, E, N]`` per sequence (E = Mamba's ``d_inner``, N = ``d_state``).

- ``selective_scan_ref`` / ``selective_scan_step`` (``naive.py``): fp32 token-by-token reference and one
  step (what ``models.mamba`` decodes with).
- ``selective_scan`` (``chunk.py``): chunked scan (a loop over the positions of all chunks at once, then
  the states carried across chunks), memory ``[B, segment, E, N]`` only in reused buffers, custom
  backward (the reverse recurrence, recomputed per segment).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels.catalog import OpCase
from kernels.selective_scan.chunk import selective_scan
from kernels.selective_scan.naive import selective_scan_ref, selective_scan_step

CHANNELS_PER_HEAD = 16  # the catalog's "heads" knob: E = heads * 16 channels (bench/mixers.py times
# 10 heads, E = 160: the 200k Mamba's d_inner)
STATE_SIZE = 16  # N, Mamba's d_state


def make_inputs(batch: int, seq_len: int, heads: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Mamba-like ranges: A = -(1..N) (S4D-real) times a spread, dt = softplus(.) from ~1e-3 to a few
    (strong decays down to e^-50 per token, which a cumulative-sum form would overflow on)."""
    B, T, E, N = batch, seq_len, heads * CHANNELS_PER_HEAD, STATE_SIZE
    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(E, 1) * torch.exp(
        0.3 * torch.randn(E, N, generator=generator)
    )
    dt_bias = math.log(math.expm1(0.01))  # softplus^-1(0.01)
    dt = F.softplus(dt_bias + 2.5 * torch.randn(B, T, E, generator=generator))
    values = {
        "x_BTE": torch.randn(B, T, E, generator=generator),
        "dt_BTE": dt,
        "A_EN": A,
        "B_BTN": torch.randn(B, T, N, generator=generator),
        "C_BTN": torch.randn(B, T, N, generator=generator),
        "D_E": torch.randn(E, generator=generator),
        "h0_BEN": torch.randn(B, E, N, generator=generator),
    }
    return {name: value.requires_grad_() for name, value in values.items()}


CASES = [
    OpCase(
        name="selective_scan",
        make_inputs=make_inputs,
        reference=selective_scan_ref,
        fast=selective_scan,
        fast_kwargs={"chunk_size": 16},
    )
]

__all__ = ["CASES", "make_inputs", "selective_scan", "selective_scan_ref", "selective_scan_step"]
