"""Hawk (De et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention"): residual blocks
of a gated linear recurrence (the RG-LRU) and a gated MLP, nothing else.

The RG-LRU, per channel of width ``R`` (fp32, decays in log space)::

    r_t = sigmoid(W_a x_t + b_a)                      recurrence gate
    i_t = sigmoid(W_x x_t + b_x)                      input gate
    log a_t = c * r_t * log sigmoid(Lambda)           a_t = a^(c r_t), a = sigmoid(Lambda), c = 8
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

``W_a`` and ``W_x`` are block-diagonal (``n_heads`` blocks), as in recurrentgemma. ``Lambda`` starts so
that ``a^c`` is uniform in [0.9, 0.999]. The recurrence runs through ``kernels.linear_scan``.

The recurrent block (the temporal mixer): two branches of width ``R = lru_width`` (~4/3 d_model)::

    y = gelu(W_y x)                                   gate branch
    u = RG-LRU(conv1d_4(W_x x))                       short causal depthwise conv (width 4), then RG-LRU
    out = W_out (u * y)

and the MLP is GeGLU with ``ffn_hidden = 3 d_model`` (``W_down(gelu(W_gate x) * W_up x)``). The conv and
the GeGLU are shared layers (``models/blocks.py``).
Griffin (``models/griffin.py``) reuses all of this and interleaves local attention.

Shape suffixes: B batch, T time, D d_model, R lru_width, F MLP hidden, K conv width.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels import dispatch
from kernels.linear_scan import linear_scan_step
from models.blocks import CausalConv1d, GeGLU, last_inputs, swiglu_trim_range
from models.lm import LanguageModel, ModelConfig, ResidualBlock
from models.registry import Architecture
from models.sizing import default_head_dim, size_by_search


@dataclass(frozen=True, kw_only=True)
class HawkConfig(ModelConfig):
    n_heads: int  # blocks of the block-diagonal RG-LRU gates (Griffin: also the attention heads)
    lru_width: int  # R: width of the recurrence (paper: ~4/3 d_model)
    ffn_hidden: int  # GeGLU hidden width (paper: 3 d_model)
    conv_width: int = 4  # temporal width of the causal depthwise conv before the RG-LRU
    lru_c: float = 8.0  # c in a_t = a^(c r_t)
    min_decay: float = 0.9  # a^c starts uniform in [min_decay, max_decay]
    max_decay: float = 0.999
    scan_chunk_size: int = 64  # kernels.linear_scan chunk (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for field_name in ("n_heads", "lru_width", "ffn_hidden", "conv_width", "scan_chunk_size"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field_name} must be a positive int, got {value!r}")
        if self.lru_width % self.n_heads:
            raise ValueError(f"{name}.n_heads={self.n_heads} must divide lru_width={self.lru_width}")
        if not 0.0 < self.min_decay < self.max_decay < 1.0:
            raise ValueError(
                f"{name} needs 0 < min_decay < max_decay < 1, got {self.min_decay}, {self.max_decay}"
            )

    def recurrent_block_params(self) -> int:
        """W_x, W_y (D x R), W_out (R x D), conv (K R + R bias), 2 block-diagonal gates (R^2/H + R), Lambda."""
        D, R, H, K = self.d_model, self.lru_width, self.n_heads, self.conv_width
        return 3 * D * R + (K * R + R) + 2 * (R * R // H + R) + R

    def mlp_params(self) -> int:
        return 3 * self.d_model * self.ffn_hidden

    def non_embedding_params(self) -> int:
        """Exact: per layer a recurrent block, a GeGLU MLP and two RMSNorms; plus the final norm."""
        per_layer = self.recurrent_block_params() + self.mlp_params() + 2 * self.d_model
        return self.n_layers * per_layer + self.d_model


# -- the RG-LRU -------------------------------------------------------------------------------------------


class BlockDiagonalLinear(nn.Module):
    """``y = x W + b`` with ``W`` block-diagonal: ``n_blocks`` independent ``[W/n, W/n]`` matrices."""

    def __init__(self, width: int, n_blocks: int, init_std: float) -> None:
        super().__init__()
        self.n_blocks, self.init_std = n_blocks, init_std
        self.weight = nn.Parameter(torch.empty(n_blocks, width // n_blocks, width // n_blocks))
        self.bias = nn.Parameter(torch.empty(n_blocks, width // n_blocks))
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, self.init_std)
        nn.init.zeros_(self.bias)

    def forward(self, x_xW: torch.Tensor) -> torch.Tensor:
        x_xHI = x_xW.unflatten(-1, (self.n_blocks, -1))
        y_xHJ = torch.einsum("...hi,hij->...hj", x_xHI, self.weight.to(x_xW.dtype)) + self.bias.to(x_xW.dtype)
        return y_xHJ.flatten(-2)


class RGLRU(nn.Module):
    """Real-Gated Linear Recurrent Unit over ``lru_width`` channels; state ``h_BR`` in fp32."""

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        self.config = config
        R = config.lru_width
        self.input_gate = BlockDiagonalLinear(R, config.n_heads, config.init_std)
        self.a_gate = BlockDiagonalLinear(R, config.n_heads, config.init_std)
        self.a_logit = nn.Parameter(torch.empty(R))  # Lambda: a = sigmoid(Lambda)
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """a^c ~ U[min_decay, max_decay] (the paper's rule), so a = u^(1/c) and Lambda = logit(a)."""
        u = torch.empty_like(self.a_logit).uniform_(self.config.min_decay, self.config.max_decay)
        self.a_logit.copy_(torch.logit(u.double() ** (1.0 / self.config.lru_c)).to(self.a_logit.dtype))

    def coefficients(self, x_xR: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log a_t`` and the normalised input ``sqrt(1 - a_t^2) * i_t * x_t``, both fp32."""
        gate_x = torch.sigmoid(self.input_gate(x_xR).float())
        gate_a = torch.sigmoid(self.a_gate(x_xR).float())
        log_a = self.config.lru_c * gate_a * F.logsigmoid(self.a_logit.float())
        # sqrt(1 - a^2) = sqrt(-expm1(2 log a)); the floor bounds the sqrt's gradient (1/(2 sqrt x) <= 500)
        # where a -> 1, the role of recurrentgemma's SqrtBoundDerivative
        multiplier = torch.sqrt(torch.clamp(-torch.expm1(2.0 * log_a), min=1e-6))
        return log_a, x_xR.float() * gate_x * multiplier

    def forward(self, x_BTR: torch.Tensor) -> torch.Tensor:
        return self.scan(x_BTR)[0]

    def scan(self, x_BTR: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every state ``h_BTR`` and the last one ``h_BR`` (the decode state after a prefill), fp32."""
        log_a_BTR, b_BTR = self.coefficients(x_BTR)
        return dispatch.get("linear_scan", b_BTR.device)(
            log_a_BTR, b_BTR, chunk_size=self.config.scan_chunk_size
        )

    def step(self, x_BR: torch.Tensor, h_BR: torch.Tensor) -> torch.Tensor:
        log_a_BR, b_BR = self.coefficients(x_BR)
        return linear_scan_step(log_a_BR, b_BR, h_BR)


class RecurrentBlock(nn.Module):
    """Hawk/Griffin temporal mixer: ``W_out(RG-LRU(conv(W_x x)) * gelu(W_y x))``."""

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        self.config = config
        D, R = config.d_model, config.lru_width
        self.linear_y = nn.Linear(D, R, bias=False)
        self.linear_x = nn.Linear(D, R, bias=False)
        self.conv = CausalConv1d(R, config.conv_width)
        self.rg_lru = RGLRU(config)
        self.linear_out = nn.Linear(R, D, bias=False)
        self.linear_out.is_residual_output = True

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        y_BTR = F.gelu(self.linear_y(x_BTD), approximate="tanh")
        h_BTR = self.rg_lru(self.conv(self.linear_x(x_BTD)))
        return self.linear_out(h_BTR.to(y_BTR.dtype) * y_BTR)

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` and the decode state after it: the conv's last ``K - 1`` inputs, the last RG-LRU state."""
        y_BTR = F.gelu(self.linear_y(x_BTD), approximate="tanh")
        u_BTR = self.linear_x(x_BTD)
        h_BTR, h_BR = self.rg_lru.scan(self.conv(u_BTR))
        conv_BKR = last_inputs(u_BTR, self.config.conv_width - 1).to(state["conv_BKR"].dtype)
        return self.linear_out(h_BTR.to(y_BTR.dtype) * y_BTR), {"conv_BKR": conv_BKR, "h_BR": h_BR}

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        R, K = self.config.lru_width, self.config.conv_width
        return {
            "conv_BKR": torch.zeros(batch, K - 1, R, device=device, dtype=torch.float32),
            "h_BR": torch.zeros(batch, R, device=device, dtype=torch.float32),
        }

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        y_BR = F.gelu(self.linear_y(x_BD), approximate="tanh")
        u_BR, state["conv_BKR"] = self.conv.step(self.linear_x(x_BD), state["conv_BKR"])
        state["h_BR"] = self.rg_lru.step(u_BR, state["h_BR"])
        return self.linear_out(state["h_BR"].to(y_BR.dtype) * y_BR), state

    def state_size(self, seq_len: int) -> int:
        """The RG-LRU state (R) and the conv's last K - 1 inputs; independent of seq_len."""
        return self.config.conv_width * self.config.lru_width

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The conv (2 K R: a multiply-add per tap and channel) and the recurrence update (2 R)."""
        return 2 * self.config.conv_width * self.config.lru_width + 2 * self.config.lru_width


class GriffinResidualBlock(ResidualBlock):
    """``ResidualBlock`` that also counts the block-diagonal gate matrices as matmul weights."""

    def matmul_params(self) -> int:
        gates = sum(m.weight.numel() for m in self.modules() if isinstance(m, BlockDiagonalLinear))
        return super().matmul_params() + gates


def build_hawk(config: HawkConfig) -> LanguageModel:
    blocks = [
        GriffinResidualBlock(
            config.d_model, RecurrentBlock(config), GeGLU(config.d_model, config.ffn_hidden), config.norm_eps
        )
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ------------------------------------------------------------------------------------------------


def recurrent_shape(d_model: int, fixed: Mapping[str, Any]) -> dict[str, int]:
    """The paper's rules from the width: head_dim as the Transformer's (``default_head_dim``),
    ``lru_width`` ~ 4/3 d_model rounded to a multiple of ``n_heads``, ``ffn_hidden = 3 d_model``."""
    if "n_heads" in fixed:
        n_heads = fixed["n_heads"]
    else:
        n_heads = d_model // default_head_dim(d_model)
    lru_width = fixed.get("lru_width", n_heads * max(1, round(4 * d_model / 3 / n_heads)))
    return {"n_heads": n_heads, "lru_width": lru_width, "ffn_hidden": fixed.get("ffn_hidden", 3 * d_model)}


def size_hawk(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> HawkConfig:
    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> HawkConfig:
        values = {**fixed, **recurrent_shape(d_model, fixed)}
        return HawkConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    # Below ~1M the GeGLU width moves within [2d, 4d] to land within 5%, as the Transformer's MLP does.
    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=swiglu_trim_range)


ARCHITECTURE = Architecture(
    name="hawk",
    config_class=HawkConfig,
    build=build_hawk,
    size_config=size_hawk,
    description="Hawk: RG-LRU recurrent blocks (conv4 + real-gated linear recurrence, GeLU gate branch) + GeGLU MLPs",
    paper="De et al. 2024, Griffin: Mixing Gated Linear Recurrences with Local Attention (arXiv:2402.19427)",
)
