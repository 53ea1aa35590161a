"""Gated Linear Attention (Yang, Wang, Shen, Panda & Kim 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training", arXiv:2312.06635), following fla's ``GatedLinearAttention`` layer.

Per head (key dim ``K = d/2 / H``, value dim ``V = d / H``; state ``S`` is ``[K, V]``)::

    q, k, v = W_q x, W_k x, W_v x                               q scaled by K^-1/2
    g_t     = logsigmoid(W_g2 W_g1 x_t + b) / 16                 per-key-channel log decay (rank-16 gate)
    S_t     = diag(exp(g_t)) S_{t-1} + k_t v_t^T,   o_t = S_t^T q_t
    y_t     = W_o [ RMSNorm_head(o_t) * silu(W_r x_t) ]          gated output, per-head norm

Blocks are pre-norm ``x + GLA(norm(x))``, ``x + SwiGLU(norm(x))`` (the paper's Llama-style stack, SwiGLU
8/3 d). Training runs ``kernels.gla.chunk_gla`` (per-channel decays), decoding the one-token recurrence.

Shape suffixes: B batch, T time, D d_model, H heads, K key head dim, V value head dim, R gate rank,
F MLP hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels import dispatch
from kernels.gla import chunk_gla_flops_per_token, gla_step
from models.blocks import SwiGLU, swiglu_hidden, swiglu_trim_range
from models.lm import LanguageModel, ModelConfig, ResidualBlock, check_positive_ints
from models.registry import Architecture
from models.sizing import size_by_search


@dataclass(frozen=True, kw_only=True)
class GLAConfig(ModelConfig):
    n_heads: int  # 4 in the paper and fla
    key_dim: int  # all heads: d/2 (fla expand_k = 0.5)
    value_dim: int  # all heads: d (fla expand_v = 1)
    ffn_hidden: int  # SwiGLU, 8/3 d
    gate_rank: int = 16  # low-rank decay gate (fla gate_low_rank_dim)
    gate_normalizer: float = 16.0  # logsigmoid(.) / 16 (fla gate_logit_normalizer)
    chunk_size: int = 64  # chunk length of the training kernel (no effect on the maths)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(
            self, ("n_heads", "key_dim", "value_dim", "ffn_hidden", "gate_rank", "chunk_size")
        )
        if self.key_dim % self.n_heads or self.value_dim % self.n_heads:
            raise ValueError(
                f"GLAConfig.n_heads={self.n_heads} must divide key_dim={self.key_dim} and value_dim={self.value_dim}"
            )
        if not self.gate_normalizer > 0:
            raise ValueError(f"GLAConfig.gate_normalizer must be > 0, got {self.gate_normalizer!r}")

    @property
    def head_k_dim(self) -> int:
        return self.key_dim // self.n_heads

    @property
    def head_v_dim(self) -> int:
        return self.value_dim // self.n_heads

    def non_embedding_params(self) -> int:
        """Exact count: per layer q, k, v, output gate, the low-rank decay gate (two matrices and a bias),
        the shared per-head norm gain, o_proj, SwiGLU and two block norms; plus the final norm."""
        d, Kd, Vd, R = self.d_model, self.key_dim, self.value_dim, self.gate_rank
        mixer = 2 * d * Kd + 2 * d * Vd + (d * R + R * Kd + Kd) + self.head_v_dim + Vd * d
        return self.n_layers * (mixer + 3 * d * self.ffn_hidden + 2 * d) + d


class GatedLinearAttention(nn.Module):
    """The GLA token mixer (one layer)."""

    def __init__(self, config: GLAConfig) -> None:
        super().__init__()
        c = self.config = config
        self.q_proj = nn.Linear(c.d_model, c.key_dim, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.key_dim, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.value_dim, bias=False)
        self.r_proj = nn.Linear(c.d_model, c.value_dim, bias=False)  # output gate (fla g_proj)
        self.gate_down = nn.Linear(c.d_model, c.gate_rank, bias=False)  # fla gk_proj[0]
        self.gate_up = nn.Linear(c.gate_rank, c.key_dim, bias=True)  # fla gk_proj[1]
        self.o_norm_weight = nn.Parameter(torch.ones(c.head_v_dim))  # shared by the heads, as in fla
        self.o_proj = nn.Linear(c.value_dim, c.d_model, bias=False)
        self.o_proj.is_residual_output = True

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        self.o_norm_weight.fill_(1.0)

    def _heads(self, x: torch.Tensor):
        """q (scaled), k, v per head and the fp32 log decay ``logsigmoid(gate) / 16`` per key channel."""
        c = self.config
        lead = x.shape[:-1]
        q = self.q_proj(x).reshape(*lead, c.n_heads, c.head_k_dim) * c.head_k_dim**-0.5
        k = self.k_proj(x).reshape(*lead, c.n_heads, c.head_k_dim)
        v = self.v_proj(x).reshape(*lead, c.n_heads, c.head_v_dim)
        gate = self.gate_up(self.gate_down(x)).float().reshape(*lead, c.n_heads, c.head_k_dim)
        return q, k, v, F.logsigmoid(gate) / c.gate_normalizer

    def _output(self, o_xHV: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-head RMSNorm (fp32) times ``silu(W_r x)``, then o_proj (fla ``FusedRMSNormGated``)."""
        o32 = o_xHV.float()
        o32 = o32 * torch.rsqrt(o32.pow(2).mean(-1, keepdim=True) + self.config.norm_eps)
        gate = self.r_proj(x).float().reshape(o32.shape)
        y = (o32 * self.o_norm_weight.float() * F.silu(gate)).flatten(-2)
        return self.o_proj(y.to(x.dtype))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTD, None)[0]

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor] | None):
        """``forward`` and the state after it: the chunked kernel returns its final ``[K, V]`` state."""
        q, k, v, g = self._heads(x_BTD)
        o_BTHV, S_BHKV = dispatch.get("chunk_gla", q.device)(q, k, v, g, chunk_size=self.config.chunk_size)
        return self._output(o_BTHV, x_BTD), {"S_BHKV": S_BHKV}

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        shape = (batch, c.n_heads, c.head_k_dim, c.head_v_dim)
        return {"S_BHKV": torch.zeros(shape, device=device, dtype=torch.float32)}

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        q, k, v, g = self._heads(x_BD)
        o_BHV, state["S_BHKV"] = gla_step(q, k, v, g, state["S_BHKV"])
        return self._output(o_BHV, x_BD), state

    def state_size(self, seq_len: int) -> int:
        """Per sequence: the ``[K, V]`` state of every head."""
        return self.config.n_heads * self.config.head_k_dim * self.config.head_v_dim

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The chunked kernel's matmuls (``kernels.gla.chunk_gla_flops_per_token``); flat in seq_len."""
        c = self.config
        return c.n_heads * chunk_gla_flops_per_token(c.head_k_dim, c.head_v_dim, chunk_size=c.chunk_size)


def build_gla(config: GLAConfig) -> LanguageModel:
    blocks = [
        ResidualBlock(
            config.d_model,
            GatedLinearAttention(config),
            SwiGLU(config.d_model, config.ffn_hidden),
            config.norm_eps,
        )
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ---------------------------------------------------------------------------------------------


def default_gla_heads(d_model: int) -> int:
    """4 heads (paper, fla), fewer below d_model 64 so a key head keeps at least 8 channels."""
    key_dim = d_model // 2
    for n_heads in (4, 3, 2):
        if key_dim % n_heads == 0 and d_model % n_heads == 0 and key_dim // n_heads >= 8:
            return n_heads
    return 1


def size_gla(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> GLAConfig:
    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> GLAConfig:
        values = {
            "n_heads": default_gla_heads(d_model),
            "key_dim": d_model // 2,
            "value_dim": d_model,
            "ffn_hidden": swiglu_hidden(d_model),
            **fixed,
        }
        return GLAConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=swiglu_trim_range)


ARCHITECTURE = Architecture(
    name="gla",
    config_class=GLAConfig,
    build=build_gla,
    size_config=size_gla,
    description="Gated Linear Attention: per-key-channel data-dependent decay (low-rank logsigmoid gate), "
    "gated per-head RMSNorm output, SwiGLU",
    paper="Yang et al. 2024, Gated Linear Attention Transformers with Hardware-Efficient Training (arXiv:2312.06635)",
)
