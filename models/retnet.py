"""RetNet (Sun et al. 2023, "Retentive Network: A Successor to Transformer for Large Language Models",
arXiv:2307.08621): multi-scale retention (MSR) + FFN blocks.

Per head ``h`` of ``H`` (query/key dim ``K = d / H``, value dim ``V = 2K``; fixed decay
``gamma_h = 1 - 2^(-5-h)``)::

    q, k = RoPE(W_q x), RoPE(W_k x) * K^-1/2        xPos-style relative positions (rotation; the xPos
                                                   decay is gamma itself)
    S_t  = gamma_h S_{t-1} + k_t v_t^T,  o_t = S_t^T q_t
         = sum_{s<=t} gamma_h^(t-s) (q_t . k_s) v_s                 (the parallel form, (Q K^T * D) V)
    y_t  = W_o [ silu(W_g x_t) * GroupNorm_heads(o_t) ]

Three forms of the same function: ``form="parallel"`` (the paper's training form, ``T x T`` decay mask
``D`` in log space), ``form="chunk"`` (chunkwise recurrent, ``kernels.gla.chunk_gla`` with one decay per
head; the default: linear in T) and the recurrent ``step`` (decoding). Blocks are the paper's
``x + MSR(norm(x))``, ``x + FFN(norm(x))`` with ``FFN = W_2 gelu(W_1 x)``, hidden 2d; W_V and W_G are
d x 2d, so a block holds 12 d^2 weights like a Transformer's. Shape suffixes: B batch, T time, S key
time, D d_model, H heads, K key head dim, V value head dim, F FFN hidden.
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
from kernels.gla import chunk_gla_flops_per_token, gla_step
from models.blocks import apply_rope, rope_cos_sin
from models.lm import LanguageModel, ModelConfig, ResidualBlock, check_positive_ints
from models.registry import Architecture
from models.sizing import size_by_search

FORMS = ("chunk", "parallel")


@dataclass(frozen=True, kw_only=True)
class RetNetConfig(ModelConfig):
    n_heads: int  # the paper: d / 256 (8 heads at d 2048, 16 at 4096); at least 2 (two decay scales)
    ffn_hidden: int  # 2d in the paper
    value_factor: int = 2  # W_V, W_G: d -> value_factor * d
    form: str = "chunk"  # training form: "chunk" (chunkwise recurrent) or "parallel" (T x T)
    chunk_size: int = 64  # chunk length of the chunkwise form (no effect on the maths)
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(self, ("n_heads", "ffn_hidden", "value_factor", "chunk_size"))
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"RetNetConfig.n_heads={self.n_heads} must divide d_model={self.d_model} into even head dims (RoPE)"
            )
        if self.form not in FORMS:
            raise ValueError(f"RetNetConfig.form must be one of {FORMS}, got {self.form!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def value_dim(self) -> int:
        return self.value_factor * self.d_model

    def non_embedding_params(self) -> int:
        """Exact count: per layer W_q, W_k (d x d), W_v, W_g (d x 2d), W_o (2d x d), the GroupNorm's
        weight and bias (2d each), the FFN (2 d F) and two block norms; plus the final norm."""
        d, Vd = self.d_model, self.value_dim
        msr = 2 * d * d + 3 * d * Vd + 2 * Vd
        return self.n_layers * (msr + 2 * d * self.ffn_hidden + 2 * d) + d


def retention_log_decay(n_heads: int, device: torch.device | None = None) -> torch.Tensor:
    """``log(gamma_h) = log(1 - 2^(-5-h))`` for h = 0..H-1, fp32 (memory from ~32 to ~2^(4+H) tokens)."""
    h = torch.arange(n_heads, device=device, dtype=torch.float32)
    return torch.log1p(-torch.exp2(-5.0 - h))


def parallel_retention(q_BTHK, k_BTHK, v_BTHV, log_gamma_H: torch.Tensor) -> torch.Tensor:
    """The parallel form ``(Q K^T * D) V``, ``D_ts = gamma^(t-s)`` for ``s <= t``; fp32, O(T^2)."""
    T = q_BTHK.shape[1]
    with torch.autocast(device_type=q_BTHK.device.type, enabled=False):
        q, k, v = (x.float().transpose(1, 2) for x in (q_BTHK, k_BTHK, v_BTHV))  # [B, H, T, *]
        positions = torch.arange(T, device=q.device, dtype=torch.float32)
        distance_TS = positions[:, None] - positions[None, :]
        causal_TS = distance_TS >= 0
        log_D_HTS = log_gamma_H[:, None, None] * distance_TS.clamp(min=0)
        D_HTS = log_D_HTS.exp().masked_fill(~causal_TS, 0.0)
        o = ((q @ k.transpose(-1, -2)) * D_HTS) @ v
    return o.transpose(1, 2).to(v_BTHV.dtype)


class MultiScaleRetention(nn.Module):
    """Gated multi-scale retention (one layer)."""

    def __init__(self, config: RetNetConfig) -> None:
        super().__init__()
        c = self.config = config
        self.q_proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.value_dim, bias=False)
        self.g_proj = nn.Linear(c.d_model, c.value_dim, bias=False)
        self.group_norm_weight = nn.Parameter(torch.ones(c.value_dim))
        self.group_norm_bias = nn.Parameter(torch.zeros(c.value_dim))
        self.o_proj = nn.Linear(c.value_dim, c.d_model, bias=False)
        self.o_proj.is_residual_output = True

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        self.group_norm_weight.fill_(1.0)
        self.group_norm_bias.zero_()

    def _heads(self, x: torch.Tensor, positions_T: torch.Tensor):
        """q, k (rotated; k scaled by K^-1/2), v per head: ``[..., T, H, K|V]`` (T may be absent)."""
        c = self.config
        lead = x.shape[:-1]
        q = self.q_proj(x).reshape(*lead, c.n_heads, c.head_dim)
        k = self.k_proj(x).reshape(*lead, c.n_heads, c.head_dim) * c.head_dim**-0.5
        v = self.v_proj(x).reshape(*lead, c.n_heads, c.value_factor * c.head_dim)
        cos_TK, sin_TK = rope_cos_sin(positions_T, c.head_dim, c.rope_theta)
        if x.ndim == 3:  # [B, T, H, K]: broadcast the tables over heads
            cos_TK, sin_TK = cos_TK[:, None, :], sin_TK[:, None, :]
        return apply_rope(q, cos_TK, sin_TK), apply_rope(k, cos_TK, sin_TK), v

    def _output(self, o_xHV: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """GroupNorm over each head's values (fp32, affine), the swish gate, W_o."""
        o32 = o_xHV.float()
        mean = o32.mean(-1, keepdim=True)
        var = o32.var(-1, unbiased=False, keepdim=True)
        normed = ((o32 - mean) * torch.rsqrt(var + self.config.norm_eps)).flatten(-2)
        normed = normed * self.group_norm_weight.float() + self.group_norm_bias.float()
        return self.o_proj((F.silu(self.g_proj(x).float()) * normed).to(x.dtype))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        if self.config.form != "parallel":
            return self.prefill(x_BTD, None)[0]
        q, k, v = self._heads(x_BTD, torch.arange(T, device=x_BTD.device))
        log_gamma_H = retention_log_decay(self.config.n_heads, x_BTD.device)
        return self._output(parallel_retention(q, k, v, log_gamma_H), x_BTD)

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor] | None):
        """The chunkwise form (whatever ``form`` says: it is exact) and the state it ends with."""
        B, T, _ = x_BTD.shape
        q, k, v = self._heads(x_BTD, torch.arange(T, device=x_BTD.device))
        g_BTH = retention_log_decay(self.config.n_heads, x_BTD.device).expand(B, T, -1)
        o_BTHV, S_BHKV = dispatch.get("chunk_gla", q.device)(
            q, k, v, g_BTH, chunk_size=self.config.chunk_size
        )
        return self._output(o_BTHV, x_BTD), {"S_BHKV": S_BHKV}

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        shape = (batch, c.n_heads, c.head_dim, c.value_factor * c.head_dim)
        return {"S_BHKV": torch.zeros(shape, device=device, dtype=torch.float32)}

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        """The recurrent form: ``S = gamma S + k v^T``, ``o = S^T q``."""
        q, k, v = self._heads(x_BD, torch.tensor([pos], device=x_BD.device))
        g_BH = retention_log_decay(self.config.n_heads, x_BD.device).expand(x_BD.shape[0], -1)
        o_BHV, state["S_BHKV"] = gla_step(q, k, v, g_BH, state["S_BHKV"])
        return self._output(o_BHV, x_BD), state

    def state_size(self, seq_len: int) -> int:
        """Per sequence: the ``[K, 2K]`` state of every head (no KV cache)."""
        c = self.config
        return c.n_heads * c.head_dim * c.value_factor * c.head_dim

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Forward flops per token of the training form. Chunkwise: ``kernels.gla`` (flat in seq_len).
        Parallel: like causal attention, (T + 1) / 2 keys on average, ``2 (K + V)`` flops per key and
        head (the masked half of the square is not counted, as for the Transformer)."""
        c = self.config
        K, V = c.head_dim, c.value_factor * c.head_dim
        if c.form == "parallel":
            return c.n_heads * (K + V) * (seq_len + 1)
        return c.n_heads * chunk_gla_flops_per_token(K, V, chunk_size=c.chunk_size)


class GeluFFN(nn.Module):
    """``W_2 gelu(W_1 x)``: the paper's FFN (no biases, as every ceiling projection)."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d_model, bias=False)
        self.down_proj.is_residual_output = True

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x_BTD)))


def build_retnet(config: RetNetConfig) -> LanguageModel:
    blocks = [
        ResidualBlock(
            config.d_model,
            MultiScaleRetention(config),
            GeluFFN(config.d_model, config.ffn_hidden),
            config.norm_eps,
        )
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ---------------------------------------------------------------------------------------------


def default_retnet_heads(d_model: int) -> int:
    """The paper's head dim 256 (d 2048 -> 8 heads, 2560 -> 10, 4096 -> 16), at least 2 heads, adjusted
    down until the heads divide d_model into even head dims."""
    n_heads = max(2, d_model // 256)
    while n_heads > 1 and (d_model % n_heads or (d_model // n_heads) % 2):
        n_heads -= 1
    return n_heads


def size_retnet(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> RetNetConfig:
    """``search_shape`` with the paper's rules (12 d^2 per block: aspect ratio as the Transformer's); below
    ~1M the FFN width moves within [d, 3d] to land within 5%."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> RetNetConfig:
        values = {"n_heads": default_retnet_heads(d_model), "ffn_hidden": 2 * d_model, **fixed}
        return RetNetConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    def ffn_range(config: RetNetConfig) -> range:
        step = 4 if config.d_model < 64 else 8
        return range(step * max(1, math.ceil(config.d_model / step)), 3 * config.d_model + 1, step)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=ffn_range)


ARCHITECTURE = Architecture(
    name="retnet",
    config_class=RetNetConfig,
    build=build_retnet,
    size_config=size_retnet,
    description="RetNet: multi-scale retention (fixed per-head decay 1 - 2^(-5-h), RoPE, GroupNorm, swish "
    "gate; parallel / chunkwise / recurrent forms) + GeLU FFN 2d",
    paper="Sun et al. 2023, Retentive Network: A Successor to Transformer for Large Language Models (arXiv:2307.08621)",
)
