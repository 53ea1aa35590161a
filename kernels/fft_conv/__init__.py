"""Long causal convolutions (kernel as long as the sequence) and S4D, the diagonal state space model whose
training form is one (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State
Space Models").

- ``causal_conv_ref`` (``naive.py``): the direct sum, token by token; ``fft_causal_conv`` (``fft.py``):
  the same by FFT of length ``2T`` (by a Toeplitz matmul for short sequences: ``direct_causal_conv``).
- ``s4d_ref`` / ``s4d_step`` / ``s4d_discretize`` (``naive.py``): the S4D recurrence (ZOH), token by
  token; ``s4d_kernel`` / ``s4d_fft`` (``fft.py``): its kernel by a Vandermonde product and the
  convolution by FFT (the training form), with initial and final state.
"""

from __future__ import annotations

import math

import torch

from kernels.catalog import OpCase
from kernels.fft_conv.fft import direct_causal_conv, fft_causal_conv, s4d_fft, s4d_kernel, vandermonde_factors
from kernels.fft_conv.naive import causal_conv_ref, s4d_discretize, s4d_ref, s4d_step

CHANNELS_PER_HEAD = 8  # the catalog's "heads" knob: H = heads * 8 channels
MODES = 8  # complex modes per channel in the S4D case (S4D's N = 16)


def make_conv_inputs(
    batch: int, seq_len: int, heads: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A random input and a decaying random kernel (an SSM-like one: the far taps are small)."""
    H = heads * CHANNELS_PER_HEAD
    decay_HT = torch.exp(-torch.arange(seq_len) / (1.0 + 20.0 * torch.rand(H, 1, generator=generator)))
    return {
        "u_BTH": torch.randn(batch, seq_len, H, generator=generator).requires_grad_(),
        "k_HT": (torch.randn(H, seq_len, generator=generator) * decay_HT).requires_grad_(),
    }


def make_s4d_inputs(
    batch: int, seq_len: int, heads: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """S4D-Lin ranges: dt log-uniform in [1e-3, 0.1], A = -1/2 + i pi m (perturbed), C ~ CN(0, 1)."""
    H, M = heads * CHANNELS_PER_HEAD, MODES
    log_dt = math.log(1e-3) + math.log(100.0) * torch.rand(H, generator=generator)
    values = {
        "u_BTH": torch.randn(batch, seq_len, H, generator=generator),
        "log_dt_H": log_dt,
        "log_A_real_HM": math.log(0.5) + 0.3 * torch.randn(H, M, generator=generator),
        "A_imag_HM": math.pi * torch.arange(M).repeat(H, 1) + 0.1 * torch.randn(H, M, generator=generator),
        "C_HM2": torch.randn(H, M, 2, generator=generator) * math.sqrt(0.5),
        "h0_BHM2": torch.randn(batch, H, M, 2, generator=generator),
    }
    return {name: value.requires_grad_() for name, value in values.items()}


CASES = [
    OpCase(
        name="fft_conv",
        make_inputs=make_conv_inputs,
        reference=causal_conv_ref,
        fast=fft_causal_conv,
        fast_kwargs={"method": "fft"},
        has_chunk_size=False,
    ),
    OpCase(
        name="s4d",
        make_inputs=make_s4d_inputs,
        reference=s4d_ref,
        fast=s4d_fft,
        fast_kwargs={"conv_method": "fft"},
        has_chunk_size=False,
    ),
]

__all__ = [
    "CASES",
    "causal_conv_ref",
    "direct_causal_conv",
    "fft_causal_conv",
    "make_conv_inputs",
    "make_s4d_inputs",
    "s4d_discretize",
    "s4d_fft",
    "s4d_kernel",
    "s4d_ref",
    "s4d_step",
    "vandermonde_factors",
]
