"""Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024, "Gated Delta Networks: Improving Mamba2 with Delta
Rule", arXiv:2412.06464), following the fla ``GatedDeltaNet`` layer.

Per head (scalar gate ``alpha_t = exp(g_t)``, write strength ``beta_t``; state ``S`` is ``[K, V]``)::

    S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T        o_t = S_t^T q_t
    q, k = L2-normalised per head (q also scaled by K^-1/2) after a short causal conv + SiLU
    v    = short causal conv + SiLU;  beta_t = sigmoid(W_b x_t)
    g_t  = -exp(A_log) * softplus(W_a x_t + dt_bias)                       (Mamba-2 style decay)
    y_t  = W_o [ RMSNorm_head(o_t) * silu(W_g x_t) ]                        (gated output norm)

Blocks are pre-norm ``x + mixer(norm(x))``, ``x + SwiGLU(norm(x))`` (the paper's Llama-style stack).
Training uses the chunked WY/UT form (``kernels.delta.chunk_gated_delta_rule``), decoding the exact
one-token recurrence. Shape suffixes: B batch, T time, D d_model, H heads, K key head dim, V value head
dim, X concatenated channels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels import dispatch
from kernels.delta import gated_delta_rule_step
from models.blocks import SwiGLU, swiglu_hidden, swiglu_trim_range
from models.lm import LanguageModel, ModelConfig, ResidualBlock
from models.registry import Architecture
from models.sizing import size_by_search


@dataclass(frozen=True, kw_only=True)
class GatedDeltaNetConfig(ModelConfig):
    n_heads: int
    head_dim: int  # key (and query) dim per head
    head_v_dim: int  # value dim per head: 2 x head_dim in the paper (expand_v = 2)
    ffn_hidden: int
    conv_size: int = 4  # short causal depthwise conv on q, k, v
    chunk_size: int = 32  # chunk length of the training kernel (no effect on the maths)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_heads", "head_dim", "head_v_dim", "ffn_hidden", "conv_size", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GatedDeltaNetConfig.{name} must be a positive int, got {value!r}")

    @property
    def key_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def value_dim(self) -> int:
        return self.n_heads * self.head_v_dim

    @property
    def conv_channels(self) -> int:
        return 2 * self.key_dim + self.value_dim

    def non_embedding_params(self) -> int:
        """Exact count: per layer in_proj (q, k, v, gate, a, b), conv, A_log + dt_bias, the output norm
        gain, o_proj, SwiGLU and two block norms; plus the final norm."""
        d, H = self.d_model, self.n_heads
        in_proj = d * (self.conv_channels + self.value_dim + 2 * H)
        mixer = in_proj + self.conv_size * self.conv_channels + 2 * H + self.head_v_dim + self.value_dim * d
        return self.n_layers * (mixer + 3 * d * self.ffn_hidden + 2 * d) + d


class GatedDeltaNet(nn.Module):
    """The Gated DeltaNet token mixer (one layer)."""

    def __init__(self, config: GatedDeltaNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.split_sizes = [c.key_dim, c.key_dim, c.value_dim, c.value_dim, c.n_heads, c.n_heads]
        # q, k, v, output gate, decay input a, beta input b in one projection
        self.in_proj = nn.Linear(c.d_model, sum(self.split_sizes), bias=False)
        self.conv_weight = nn.Parameter(torch.empty(c.conv_channels, 1, c.conv_size))  # depthwise on q|k|v
        self.A_log = nn.Parameter(torch.empty(c.n_heads))
        self.dt_bias = nn.Parameter(torch.empty(c.n_heads))
        self.o_norm_weight = nn.Parameter(torch.empty(c.head_v_dim))  # shared by the heads, as in fla
        self.o_proj = nn.Linear(c.value_dim, c.d_model, bias=False)
        self.o_proj.is_residual_output = True

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """fla / Mamba-2 initialisation of the non-matrix parameters (matrices: the shell's normal(0.02)).

        conv: PyTorch's Conv1d default U(+-1/sqrt(conv_size)); A = exp(A_log) ~ U(1, 16) (Mamba-2's
        A_init_range; fla draws U(0, 16)); dt = softplus(dt_bias) log-uniform in [1e-3, 1e-1] (floor
        1e-4), stored as its inverse softplus; output norm gain 1.
        """
        bound = 1.0 / math.sqrt(self.config.conv_size)
        self.conv_weight.uniform_(-bound, bound)
        self.A_log.copy_(torch.empty_like(self.A_log).uniform_(1.0, 16.0).log())
        dt_min, dt_max = 1e-3, 1e-1
        log_dt = torch.rand_like(self.dt_bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = log_dt.exp().clamp(min=1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.o_norm_weight.fill_(1.0)

    # -- shared maths ---------------------------------------------------------------------------------

    def _heads(self, qkv_xX: torch.Tensor, a_xH: torch.Tensor, b_xH: torch.Tensor):
        """After the conv: per-head q (normalised, scaled), k (normalised), v, log decay g, beta."""
        c = self.config
        q_xX, k_xX, v_xX = F.silu(qkv_xX).split([c.key_dim, c.key_dim, c.value_dim], dim=-1)
        lead = q_xX.shape[:-1]
        q_xHK = F.normalize(q_xX.float().reshape(*lead, c.n_heads, c.head_dim), dim=-1, eps=1e-6)
        k_xHK = F.normalize(k_xX.float().reshape(*lead, c.n_heads, c.head_dim), dim=-1, eps=1e-6)
        v_xHV = v_xX.reshape(*lead, c.n_heads, c.head_v_dim)
        g_xH = -self.A_log.float().exp() * F.softplus(a_xH.float() + self.dt_bias.float())
        beta_xH = torch.sigmoid(b_xH.float())
        return q_xHK * c.head_dim**-0.5, k_xHK, v_xHV, g_xH, beta_xH

    def _output(self, o_xHV: torch.Tensor, gate_xX: torch.Tensor) -> torch.Tensor:
        """Gated RMSNorm per head (fp32): ``norm(o) * weight * silu(gate)``, then o_proj."""
        o32_xHV = o_xHV.float()
        o32_xHV = o32_xHV * torch.rsqrt(o32_xHV.pow(2).mean(-1, keepdim=True) + self.config.norm_eps)
        gate_xHV = gate_xX.float().reshape(o_xHV.shape)
        y_xHV = o32_xHV * self.o_norm_weight.float() * F.silu(gate_xHV)
        return self.o_proj(y_xHV.flatten(-2).to(gate_xX.dtype))

    # -- training form --------------------------------------------------------------------------------

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTD, None)[0]

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor] | None):
        """``forward`` and the decode state after it: the conv's last inputs and the kernel's final state
        (``state``, from ``init_state``, gives the conv history's dtype; None: the input's)."""
        c = self.config
        T = x_BTD.shape[1]
        qkv_BTX, gate_BTX, a_BTH, b_BTH = self._split(self.in_proj(x_BTD))
        # causal depthwise conv: left-pad by conv_size - 1, one filter per channel
        qkv_BXT = F.pad(qkv_BTX.transpose(1, 2), (c.conv_size - 1, 0))
        # the decode history, copied: a view would keep the whole [B, X, T] buffer in the state
        conv_BXW = qkv_BXT[..., qkv_BXT.shape[-1] - (c.conv_size - 1) :].clone()
        qkv_BXT = F.conv1d(qkv_BXT, self.conv_weight.to(qkv_BXT.dtype), groups=c.conv_channels)[..., :T]
        q, k, v, g, beta = self._heads(qkv_BXT.transpose(1, 2), a_BTH, b_BTH)
        o_BTHV, S_BHKV = dispatch.get("chunk_gated_delta_rule", q.device)(
            q, k, v, g, beta, chunk_size=c.chunk_size
        )
        y_BTD = self._output(o_BTHV.to(x_BTD.dtype), gate_BTX)
        dtype = x_BTD.dtype if state is None else state["conv_BXW"].dtype
        return y_BTD, {"conv_BXW": conv_BXW.to(dtype), "S_BHKV": S_BHKV}

    def _split(self, proj_xP: torch.Tensor):
        q, k, v, gate, a, b = proj_xP.split(self.split_sizes, dim=-1)
        return torch.cat([q, k, v], dim=-1), gate, a, b

    # -- decoding -------------------------------------------------------------------------------------

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        return {
            "conv_BXW": torch.zeros(batch, c.conv_channels, c.conv_size - 1, device=device, dtype=dtype),
            "S_BHKV": torch.zeros(
                batch, c.n_heads, c.head_dim, c.head_v_dim, device=device, dtype=torch.float32
            ),
        }

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        qkv_BX, gate_BX, a_BH, b_BH = self._split(self.in_proj(x_BD))
        window_BXW = torch.cat([state["conv_BXW"], qkv_BX[..., None].to(state["conv_BXW"].dtype)], dim=-1)
        state["conv_BXW"] = window_BXW[..., 1:]
        qkv_BX = (window_BXW * self.conv_weight[:, 0].to(window_BXW.dtype)).sum(-1).to(x_BD.dtype)
        q, k, v, g, beta = self._heads(qkv_BX, a_BH, b_BH)
        o_BHV, state["S_BHKV"] = gated_delta_rule_step(q, k, v, g, beta, state["S_BHKV"])
        return self._output(o_BHV.to(x_BD.dtype), gate_BX), state

    # -- accounting -----------------------------------------------------------------------------------

    def state_size(self, seq_len: int) -> int:
        """Per sequence: the ``[K, V]`` state of every head plus the conv's last ``conv_size - 1`` inputs."""
        c = self.config
        return c.n_heads * c.head_dim * c.head_v_dim + (c.conv_size - 1) * c.conv_channels

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Forward flops per token beyond the projections: the conv (2 * conv_size per channel) and the
        chunked kernel's matmuls per head, chunk size C (``kernels/delta/chunk.py``): K K^T, Q K^T and
        the inverse's products (2 x 3CK), T V and (QK) U (2 x 2CV), the transition K^T W (2K^2), K^T U0,
        W S and Q S (2 x 3KV), the carried M S (2 K^2 V / C), the triangular inverse (~C^2 / 3).
        Independent of seq_len: a recurrent model's cost per token is flat."""
        c = self.config
        C, K, V = c.chunk_size, c.head_dim, c.head_v_dim
        per_head = 2 * (3 * C * K + 2 * C * V + K * K + 3 * K * V) + (2 * K * K * V + C**3 // 3) // C
        return 2 * c.conv_size * c.conv_channels + c.n_heads * per_head


def build_gated_deltanet(config: GatedDeltaNetConfig) -> LanguageModel:
    blocks = [
        ResidualBlock(
            config.d_model, GatedDeltaNet(config), SwiGLU(config.d_model, config.ffn_hidden), config.norm_eps
        )
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ---------------------------------------------------------------------------------------------


def default_gdn_heads(d_model: int) -> tuple[int, int]:
    """(n_heads, head_dim) with key_dim = n_heads * head_dim ~ 0.75 d_model, as the paper's 1.3B model
    (d 2048: 6 heads of 256; values 2 x 256): head_dim = the power of two <= d/8 within [16, 256]."""
    head_dim = 16
    while head_dim * 2 <= min(256, d_model / 8):
        head_dim *= 2
    return max(1, round(0.75 * d_model / head_dim)), head_dim


def _derive(n_layers: int, d_model: int, vocab_size: int, fixed: Mapping[str, Any]) -> GatedDeltaNetConfig:
    n_heads, head_dim = default_gdn_heads(d_model)
    head_dim = fixed.get("head_dim", head_dim)
    values = {
        "n_heads": n_heads,
        "head_dim": head_dim,
        "head_v_dim": 2 * head_dim,
        "ffn_hidden": swiglu_hidden(d_model),
        **fixed,
    }
    return GatedDeltaNetConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)


def size_gated_deltanet(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> GatedDeltaNetConfig:
    """``search_shape`` over (n_layers, d_model) with ``_derive``'s rule; below ~1M, where the width grid
    is coarse, the SwiGLU width moves within [2d, 4d] to land within 5% (as for the Transformer)."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> GatedDeltaNetConfig:
        return _derive(n_layers, d_model, vocab_size, fixed)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=swiglu_trim_range)


ARCHITECTURE = Architecture(
    name="gated_deltanet",
    config_class=GatedDeltaNetConfig,
    build=build_gated_deltanet,
    size_config=size_gated_deltanet,
    description="Gated DeltaNet: gated delta rule (chunked WY form), short convs, gated output norm, SwiGLU",
    paper="Yang, Kautz & Hatamizadeh 2024, Gated Delta Networks (arXiv:2412.06464)",
)
