"""Transformer baseline, Llama style (Touvron et al. 2023): pre-norm RMSNorm, RoPE, SwiGLU, no biases,
causal softmax attention through ``F.scaled_dot_product_attention``, optional grouped-query attention
(``n_kv_heads < n_heads``, Ainslie et al. 2023). Decoding keeps a KV cache that grows with the context
(``init_state`` reserves ``seq_len`` positions, ``prefill`` exactly the context, ``step`` grows it past
either). Past the training length RoPE keeps working: rotations are computed for any position (no table
to index out of), though the model never saw angles that large in training, so quality past ``seq_len``
is whatever ``orchestrator.efficiency.extrapolation`` measures (learned absolute positions would raise an
index error there instead).

Shape suffixes: B batch, T time, S key time, D d_model, H query heads, G kv heads, K head dim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import SwiGLU, apply_rope, rope_cos_sin, swiglu_hidden, swiglu_trim_range
from models.lm import LanguageModel, ModelConfig, ResidualBlock
from models.registry import Architecture
from models.sizing import default_head_dim, size_by_search


@dataclass(frozen=True, kw_only=True)
class TransformerConfig(ModelConfig):
    n_heads: int
    head_dim: int
    n_kv_heads: int  # == n_heads: multi-head attention; fewer: grouped-query attention
    ffn_hidden: int
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_heads", "head_dim", "n_kv_heads", "ffn_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TransformerConfig.{name} must be a positive int, got {value!r}")
        if self.head_dim % 2:
            raise ValueError(f"TransformerConfig.head_dim must be even for RoPE, got {self.head_dim}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"TransformerConfig.n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}"
            )

    @property
    def d_attn(self) -> int:
        return self.n_heads * self.head_dim

    def non_embedding_params(self) -> int:
        """Exact count, without building: per layer q,k,v,o + SwiGLU + 2 norms; plus the final norm."""
        attention = self.d_model * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = 3 * self.d_model * self.ffn_hidden
        return self.n_layers * (attention + mlp + 2 * self.d_model) + self.d_model


class Attention(nn.Module):
    """Causal multi-head (or grouped-query) softmax attention with RoPE on queries and keys."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.q_proj = nn.Linear(config.d_model, config.n_heads * config.head_dim, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.n_kv_heads * config.head_dim, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.n_kv_heads * config.head_dim, bias=False)
        self.o_proj = nn.Linear(config.n_heads * config.head_dim, config.d_model, bias=False)
        self.o_proj.is_residual_output = True

    def _project(self, x_BTD: torch.Tensor, positions_T: torch.Tensor):
        """q_BHTK, k_BGTK, v_BGTK with RoPE applied to q and k."""
        B, T, _ = x_BTD.shape
        q_BHTK = self.q_proj(x_BTD).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k_BGTK = self.k_proj(x_BTD).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v_BGTK = self.v_proj(x_BTD).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        cos_TK, sin_TK = rope_cos_sin(positions_T, self.head_dim, self.config.rope_theta)
        return apply_rope(q_BHTK, cos_TK, sin_TK), apply_rope(k_BGTK, cos_TK, sin_TK), v_BGTK

    def _expand_kv(self, kv_BGSK: torch.Tensor) -> torch.Tensor:
        """Repeat each kv head for its group of query heads: [B,G,S,K] -> [B,H,S,K]."""
        groups = self.n_heads // self.n_kv_heads
        return kv_BGSK if groups == 1 else kv_BGSK.repeat_interleave(groups, dim=1)

    def _attend(self, x_BTD: torch.Tensor):
        """The training form's output ``y_BTD`` and the keys and values it attended (``[B, G, T, K]``)."""
        B, T, _ = x_BTD.shape
        positions_T = torch.arange(T, device=x_BTD.device)
        q_BHTK, k_BGTK, v_BGTK = self._project(x_BTD, positions_T)
        o_BHTK = F.scaled_dot_product_attention(
            q_BHTK, self._expand_kv(k_BGTK), self._expand_kv(v_BGTK), is_causal=True
        )
        y_BTD = self.o_proj(o_BHTK.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))
        return y_BTD, k_BGTK, v_BGTK

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self._attend(x_BTD)[0]

    # -- decoding -------------------------------------------------------------------------------------

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        shape = (batch, self.n_kv_heads, self.config.seq_len, self.head_dim)
        return {
            "k_BGSK": torch.zeros(shape, device=device, dtype=dtype),
            "v_BGSK": torch.zeros(shape, device=device, dtype=dtype),
        }

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` plus the KV cache of positions ``0..T-1``, exactly ``T`` long (``state`` only gives
        the cache's dtype: prefill starts from an empty cache)."""
        y_BTD, k_BGTK, v_BGTK = self._attend(x_BTD)
        dtype = state["k_BGSK"].dtype
        return y_BTD, {"k_BGSK": k_BGTK.to(dtype).contiguous(), "v_BGSK": v_BGTK.to(dtype).contiguous()}

    @staticmethod
    def _reserve(state: dict[str, torch.Tensor], pos: int) -> None:
        """Make room for position ``pos``: a full cache grows by a quarter (at least 256 positions), so
        appending stays amortised O(1) per token and the cache never caps the context length."""
        capacity = state["k_BGSK"].shape[2]
        if pos < capacity:
            return
        grown = pos + max(256, capacity // 4)
        for name in ("k_BGSK", "v_BGSK"):
            old_BGSK = state[name]
            new_BGSK = old_BGSK.new_zeros(*old_BGSK.shape[:2], grown, old_BGSK.shape[3])
            new_BGSK[:, :, :capacity] = old_BGSK
            state[name] = new_BGSK

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        B = x_BD.shape[0]
        positions_T = torch.tensor([pos], device=x_BD.device)
        q_BH1K, k_BG1K, v_BG1K = self._project(x_BD[:, None, :], positions_T)
        self._reserve(state, pos)
        state["k_BGSK"][:, :, pos : pos + 1] = k_BG1K.to(state["k_BGSK"].dtype)
        state["v_BGSK"][:, :, pos : pos + 1] = v_BG1K.to(state["v_BGSK"].dtype)
        k_BGSK = state["k_BGSK"][:, :, : pos + 1].to(q_BH1K.dtype)
        v_BGSK = state["v_BGSK"][:, :, : pos + 1].to(q_BH1K.dtype)
        # one query attends every cached position, so no mask is needed
        o_BH1K = F.scaled_dot_product_attention(q_BH1K, self._expand_kv(k_BGSK), self._expand_kv(v_BGSK))
        return self.o_proj(o_BH1K.reshape(B, self.n_heads * self.head_dim)), state

    # -- accounting -----------------------------------------------------------------------------------

    def state_size(self, seq_len: int) -> int:
        """KV cache per sequence per layer: keys and values for every position and kv head."""
        return 2 * seq_len * self.n_kv_heads * self.head_dim

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Forward flops of the attention scores and the weighted sum of values, per token.

        Causal: the token at position t (0-based) attends t + 1 keys; averaged over a sequence of
        length T that is (T + 1) / 2 keys. Per key, q.k costs 2 * d_attn flops and adding p * v another
        2 * d_attn, so 4 * d_attn * (T + 1) / 2 = 2 * d_attn * (T + 1). (Kaplan et al.'s 2 * n_ctx * d_attn;
        Chinchilla app. F counts the full T x T square, i.e. twice this.)
        """
        return 2 * self.config.d_attn * (seq_len + 1)


def build_transformer(config: TransformerConfig) -> LanguageModel:
    blocks = [
        ResidualBlock(
            config.d_model, Attention(config), SwiGLU(config.d_model, config.ffn_hidden), config.norm_eps
        )
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ---------------------------------------------------------------------------------------------


def _derive(n_layers: int, d_model: int, vocab_size: int, fixed: Mapping[str, Any]) -> TransformerConfig:
    """The config the sizing rule gives a (depth, width), honouring ``fixed`` fields; ValueError if none.

    head_dim = default_head_dim(d_model) (64 / 32 / 16), n_heads = d_model / head_dim (d_attn = d_model),
    n_kv_heads = n_heads, ffn_hidden = swiglu_hidden(d_model) (8/3 d rounded).
    """
    if "head_dim" in fixed:
        head_dim = fixed["head_dim"]
    elif "n_heads" in fixed:
        if d_model % fixed["n_heads"]:
            raise ValueError(f"n_heads={fixed['n_heads']} does not divide d_model={d_model}")
        head_dim = d_model // fixed["n_heads"]
    else:
        head_dim = default_head_dim(d_model)
    if "n_heads" in fixed:
        n_heads = fixed["n_heads"]
    elif d_model % head_dim:
        raise ValueError(f"head_dim={head_dim} does not divide d_model={d_model}")
    else:
        n_heads = d_model // head_dim
    values = {"n_kv_heads": n_heads, "ffn_hidden": swiglu_hidden(d_model), **fixed}
    values.update(
        vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, n_heads=n_heads, head_dim=head_dim
    )
    return TransformerConfig(**values)


def size_transformer(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> TransformerConfig:
    """Shape for ``target`` non-embedding params: ``models.sizing.search_shape`` over (n_layers, d_model)
    with the derivation rule of ``_derive``. Fixed ``n_layers`` / ``d_model`` overrides restrict the
    search; other overrides (head_dim, n_kv_heads, ffn_hidden, ...) are held while it searches."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> TransformerConfig:
        return _derive(n_layers, d_model, vocab_size, fixed)

    # Small models: the width grid is too coarse to land within 5%; the MLP moves within [2d, 4d].
    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=swiglu_trim_range)


ARCHITECTURE = Architecture(
    name="transformer",
    config_class=TransformerConfig,
    build=build_transformer,
    size_config=size_transformer,
    description="Llama-style Transformer: pre-norm RMSNorm, RoPE, SwiGLU, causal softmax attention (GQA optional)",
    paper="Touvron et al. 2023, LLaMA (arXiv:2302.13971); Vaswani et al. 2017",
)
