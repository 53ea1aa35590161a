"""Shared building blocks: RMSNorm, rotary position embeddings (RoPE), the SwiGLU and GeGLU MLPs, the
depthwise causal convolution.

Every architecture in ``models/`` takes these from here (never from a sibling mixer), so a difference
measured between two architectures comes from their token mixers, not from a different norm or MLP.
Parameter names and init order are part of the checkpoint format: ``tests/models/test_models_golden.py``
pins them for every architecture.

Shape suffixes: B batch, T time (sequence), D model width, H heads, K head dim (conv width for the
conv), F MLP hidden, R conv channels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019), as in Llama: ``x / rms(x) * weight``, no bias.

    Computed in fp32 whatever the input dtype (the mean of squares underflows in bf16), then cast back.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x32_BTD = x_BTD.float()
        normed_BTD = x32_BTD * torch.rsqrt(x32_BTD.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed_BTD.to(x_BTD.dtype) * self.weight.to(x_BTD.dtype)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


# ---------------------------------------------------------------------------------------------------
# Rotary position embeddings (Su et al. 2021, "RoFormer"), rotate-half layout as in GPT-NeoX / Llama-HF:
# channel i is paired with channel i + K/2 and the pair is rotated by angle pos * theta^(-2i/K).
# Angles are computed on the fly in fp32 from integer positions: no buffers, so models built on the
# meta device need no fix-up, and any sequence length works.
# ---------------------------------------------------------------------------------------------------


def rope_cos_sin(
    positions_T: torch.Tensor, head_dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each ``[T, head_dim]`` fp32, for integer ``positions_T``."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    exponent_K2 = torch.arange(0, head_dim, 2, device=positions_T.device, dtype=torch.float32) / head_dim
    inv_freq_K2 = theta ** (-exponent_K2)
    angle_TK2 = positions_T.to(torch.float32)[:, None] * inv_freq_K2[None, :]
    angle_TK = torch.cat([angle_TK2, angle_TK2], dim=-1)
    return angle_TK.cos(), angle_TK.sin()


def apply_rope(x_BHTK: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
    """Rotate ``x_BHTK`` (queries or keys) by the angles in ``cos_TK`` / ``sin_TK``; math in fp32."""
    x32_BHTK = x_BHTK.float()
    half = x32_BHTK.shape[-1] // 2
    rotated_BHTK = torch.cat([-x32_BHTK[..., half:], x32_BHTK[..., :half]], dim=-1)
    return (x32_BHTK * cos_TK + rotated_BHTK * sin_TK).to(x_BHTK.dtype)


# ---------------------------------------------------------------------------------------------------
# SwiGLU MLP (Shazeer 2020, "GLU Variants Improve Transformer"), as in Llama: down(silu(gate(x)) * up(x)).
# ---------------------------------------------------------------------------------------------------


def swiglu_multiple(d_model: int) -> int:
    """The multiple SwiGLU hidden widths are rounded to at this d_model (see ``swiglu_hidden``)."""
    return 4 if d_model < 64 else 8 if d_model < 512 else 64


def swiglu_width_range(d_model: int, *, upper: int) -> range:
    """SwiGLU widths from ~2*d_model to upper*d_model on ``swiglu_multiple``: the values sizing may trim
    an MLP to when the width grid is too coarse to land near a small target."""
    step = swiglu_multiple(d_model)
    return range(step * max(1, round(2 * d_model / step)), upper * d_model + 1, step)


def swiglu_trim_range(config: Any) -> range:
    """The MLP widths sizing may trim to, [2d, 4d] on the SwiGLU multiple: the Transformer's range, also
    used by the architectures whose gated MLP has its three matrices (GeGLU, Mega's FFN)."""
    return swiglu_width_range(config.d_model, upper=4)


def swiglu_hidden(d_model: int, multiple_of: int | None = None) -> int:
    """Hidden width of a SwiGLU MLP: 8/3 * d_model rounded to a multiple.

    8/3 keeps the three SwiGLU matrices at the parameter count of a classic 4*d two-matrix MLP
    (3 * 8/3 = 2 * 4). Rounded to a multiple of 4 below d_model=64 (finer steps help sizing tiny
    models), of 8 below 512 and of 64 from there (tensor-core and memory-alignment friendly; Llama
    uses 256 at 4096 wide).
    """
    if multiple_of is None:
        multiple_of = swiglu_multiple(d_model)
    return max(multiple_of, multiple_of * round(8 * d_model / 3 / multiple_of))


class GatedMLP(nn.Module):
    """``down(act(gate(x)) * up(x))``, no biases; ``down`` is a residual output projection. The
    gated MLPs below differ only in ``act``, so their parameters (names, shapes, init order) agree."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, hidden, bias=False)
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d_model, bias=False)
        # Marks the projection that writes into the residual stream; LanguageModel scales its init.
        self.down_proj.is_residual_output = True

    def act(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        h_BTF = self.act(self.gate_proj(x_BTD)) * self.up_proj(x_BTD)
        return self.down_proj(h_BTF)


class SwiGLU(GatedMLP):
    """``down(silu(gate(x)) * up(x))`` (Shazeer 2020; Llama's MLP)."""

    def act(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


# ---------------------------------------------------------------------------------------------------
# GeGLU MLP (Shazeer 2020; Griffin's MLP block): SwiGLU's shape with a tanh-approximated GeLU gate.
# ---------------------------------------------------------------------------------------------------


class GeGLU(GatedMLP):
    """Gated GeLU MLP: ``down(gelu(gate(x)) * up(x))`` with the tanh-approximated GeLU."""

    def act(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------------
# Short depthwise causal convolution (Hawk/Griffin before the RG-LRU, Mamba before the scan).
# ---------------------------------------------------------------------------------------------------


def last_inputs(x_BTR: torch.Tensor, count: int) -> torch.Tensor:
    """The last ``count`` positions of ``x_BTR`` as ``[B, count, R]``, oldest first, zero-padded on the
    left when ``T < count``: a causal conv's (or token shift's) decode history after a prefill. A copy, not
    a view: a view would keep the whole ``[B, T, R]`` buffer alive inside the decode state."""
    if count == 0:
        return x_BTR[:, :0].clone()
    return F.pad(x_BTR, (0, 0, max(0, count - x_BTR.shape[1]), 0))[:, -count:].clone()


class CausalConv1d(nn.Module):
    """Depthwise causal convolution over time: ``y_t = bias + sum_k w_k * x_{t-K+1+k}``.

    Initialised as recurrentgemma's ``Conv1D``; a mixer that follows another init overrides
    ``init_extra_parameters`` (Mamba: PyTorch's ``Conv1d`` default)."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(width, 1, kernel))
        self.bias = nn.Parameter(torch.empty(width))
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, math.sqrt(0.01 / self.kernel))  # recurrentgemma's Conv1D init
        nn.init.zeros_(self.bias)

    def forward(self, x_BTR: torch.Tensor) -> torch.Tensor:
        T = x_BTR.shape[1]
        y_BRT = F.conv1d(
            x_BTR.transpose(1, 2), self.weight.to(x_BTR.dtype), self.bias.to(x_BTR.dtype),
            padding=self.kernel - 1, groups=x_BTR.shape[-1],
        )  # fmt: skip
        return y_BRT[..., :T].transpose(1, 2)

    def step(self, x_BR: torch.Tensor, history_BKR: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token; ``history_BKR`` holds the previous ``K - 1`` inputs, oldest first."""
        window_BKR = torch.cat([history_BKR, x_BR[:, None].to(history_BKR.dtype)], dim=1)
        y_BR = torch.einsum("bkr,rk->br", window_BKR, self.weight[:, 0].to(window_BKR.dtype)) + self.bias
        return y_BR.to(x_BR.dtype), window_BKR[:, 1:]
