"""Griffin (De et al. 2024): Hawk's recurrent blocks interleaved with local multi-query attention, two
recurrent blocks per attention block (layers ``R, R, A, R, R, A, ...``), every block followed by a
GeGLU MLP.

Local attention (the temporal mixer of every third layer)::

    q = W_q x   (n_heads heads of head_dim)       k = W_k x, v = W_v x   (one shared head: MQA)
    RoPE on the first half of each head's channels (recurrentgemma)
    o_t = softmax over keys t - window + 1 .. t of (q_t . k_s / sqrt(head_dim)) v_s
    out = W_o o

Training uses ``kernels.local_attention.sliding_window_attention`` (blocked; no ``T x T`` matrix), so
memory per token is set by the window, not the context. Decoding keeps a rolling KV cache of
``window`` slots (slot ``pos % window``), so the state is bounded by the window whatever the context.

The window is a config field (paper: 1024 at 2048 training context); the sizing rule sets it to
``min(1024, seq_len // 2)``, the paper's window-to-context ratio, so short contexts stay local.

Shape suffixes: B batch, T time, D d_model, H query heads, K head dim, W window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels.local_attention import sliding_window_attention
from models.blocks import GeGLU, apply_rope, rope_cos_sin, swiglu_trim_range
from models.hawk import GriffinResidualBlock, HawkConfig, RecurrentBlock, recurrent_shape
from models.lm import LanguageModel
from models.registry import Architecture
from models.sizing import size_by_search

PAPER_WINDOW = 1024
ATTENTION_PERIOD = 3  # layers 2, 5, 8, ... (0-based) are local attention: two recurrent blocks per attention


@dataclass(frozen=True, kw_only=True)
class GriffinConfig(HawkConfig):
    window: int = PAPER_WINDOW  # keys per query in local attention (itself included)
    rope_theta: float = 10000.0
    # query block of the blocked local attention, capped at the window (speed only)
    attention_chunk_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("window", "attention_chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GriffinConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"GriffinConfig.n_heads={self.n_heads} must divide d_model={self.d_model}")
        if self.head_dim % 4:
            raise ValueError(
                f"GriffinConfig.head_dim={self.head_dim} must be a multiple of 4 (RoPE on half the channels)"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def is_attention_layer(self, index: int) -> bool:
        return index % ATTENTION_PERIOD == ATTENTION_PERIOD - 1

    @property
    def n_attention_layers(self) -> int:
        return sum(self.is_attention_layer(i) for i in range(self.n_layers))

    def attention_block_params(self) -> int:
        """W_q, W_o (D x D) and the single key and value heads (D x head_dim each)."""
        return 2 * self.d_model * self.d_model + 2 * self.d_model * self.head_dim

    def non_embedding_params(self) -> int:
        n_attention = self.n_attention_layers
        mixers = n_attention * self.attention_block_params()
        mixers += (self.n_layers - n_attention) * self.recurrent_block_params()
        return mixers + self.n_layers * (self.mlp_params() + 2 * self.d_model) + self.d_model


class LocalAttention(nn.Module):
    """Sliding-window multi-query attention with RoPE on the first half of each head's channels."""

    def __init__(self, config: GriffinConfig) -> None:
        super().__init__()
        self.config = config
        D, K = config.d_model, config.head_dim
        self.n_heads, self.head_dim, self.window = config.n_heads, K, config.window
        self.q_proj = nn.Linear(D, D, bias=False)
        self.k_proj = nn.Linear(D, K, bias=False)
        self.v_proj = nn.Linear(D, K, bias=False)
        self.o_proj = nn.Linear(D, D, bias=False)
        self.o_proj.is_residual_output = True

    def _rope_half(self, x_BxTK: torch.Tensor, positions_T: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        cos_TK, sin_TK = rope_cos_sin(positions_T, half, self.config.rope_theta)
        return torch.cat([apply_rope(x_BxTK[..., :half], cos_TK, sin_TK), x_BxTK[..., half:]], dim=-1)

    def _project(self, x_BTD: torch.Tensor, positions_T: torch.Tensor):
        B, T, _ = x_BTD.shape
        q_BHTK = self.q_proj(x_BTD).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k_B1TK = self.k_proj(x_BTD)[:, None]
        v_B1TK = self.v_proj(x_BTD)[:, None]
        return self._rope_half(q_BHTK, positions_T), self._rope_half(k_B1TK, positions_T), v_B1TK

    def _attend(self, x_BTD: torch.Tensor):
        """The training form's output ``y_BTD`` and the keys and values it attended (``[B, 1, T, K]``)."""
        B, T, D = x_BTD.shape
        q_BHTK, k_B1TK, v_B1TK = self._project(x_BTD, torch.arange(T, device=x_BTD.device))
        # query blocks no longer than the window: each block then scores window + block keys per query
        block = min(self.config.attention_chunk_size, self.window)
        o_BHTK, _ = sliding_window_attention(q_BHTK, k_B1TK, v_B1TK, window=self.window, chunk_size=block)
        return self.o_proj(o_BHTK.to(x_BTD.dtype).transpose(1, 2).reshape(B, T, D)), k_B1TK, v_B1TK

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self._attend(x_BTD)[0]

    # -- decoding: a rolling cache of the last `window` keys and values ----------------------------------

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        shape = (batch, self.window, self.head_dim)
        return {
            "k_BWK": torch.zeros(shape, device=device, dtype=dtype),
            "v_BWK": torch.zeros(shape, device=device, dtype=dtype),
        }

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` and the rolling cache after it: the last ``min(T, window)`` keys and values, each in
        the slot ``position % window`` that ``step`` would have written it to."""
        T = x_BTD.shape[1]
        y_BTD, k_B1TK, v_B1TK = self._attend(x_BTD)
        kept = min(T, self.window)
        slots_S = torch.arange(T - kept, T, device=x_BTD.device) % self.window
        cache = {name: torch.zeros_like(state[name]) for name in ("k_BWK", "v_BWK")}
        cache["k_BWK"][:, slots_S] = k_B1TK[:, 0, T - kept :].to(cache["k_BWK"].dtype)
        cache["v_BWK"][:, slots_S] = v_B1TK[:, 0, T - kept :].to(cache["v_BWK"].dtype)
        return y_BTD, cache

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        B, D = x_BD.shape
        q_BH1K, k_B11K, v_B11K = self._project(x_BD[:, None], torch.tensor([pos], device=x_BD.device))
        slot = pos % self.window  # overwrites the key that just left the window
        state["k_BWK"][:, slot] = k_B11K[:, 0, 0].to(state["k_BWK"].dtype)
        state["v_BWK"][:, slot] = v_B11K[:, 0, 0].to(state["v_BWK"].dtype)
        filled = min(pos + 1, self.window)  # softmax over a set of keys: slot order does not matter
        k_B1SK = state["k_BWK"][:, None, :filled].to(q_BH1K.dtype)
        v_B1SK = state["v_BWK"][:, None, :filled].to(q_BH1K.dtype)
        o_BH1K = F.scaled_dot_product_attention(
            q_BH1K, k_B1SK.expand(B, self.n_heads, filled, -1), v_B1SK.expand(B, self.n_heads, filled, -1)
        )
        return self.o_proj(o_BH1K.reshape(B, D)), state

    # -- accounting -------------------------------------------------------------------------------------------

    def state_size(self, seq_len: int) -> int:
        """The rolling KV cache: one key and one value head for the last ``min(seq_len, window)`` tokens."""
        return 2 * min(seq_len, self.window) * self.head_dim

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Scores and weighted values, 4 * d_attn flops per key attended (d_attn = d_model).

        Up to the window this is the Transformer's causal count, (T + 1) / 2 keys on average; beyond it
        every query past the first window attends ``window`` keys, and that steady state is what we count
        (the warm-up discount, window * (window - 1) / 2T keys, is dropped so the count stays affine in T).
        """
        d_attn = self.config.d_model
        if seq_len <= self.window:
            return 2 * d_attn * (seq_len + 1)
        return 4 * d_attn * self.window


def build_griffin(config: GriffinConfig) -> LanguageModel:
    blocks = []
    for index in range(config.n_layers):
        mixer = LocalAttention(config) if config.is_attention_layer(index) else RecurrentBlock(config)
        mlp = GeGLU(config.d_model, config.ffn_hidden)
        blocks.append(GriffinResidualBlock(config.d_model, mixer, mlp, config.norm_eps))
    return LanguageModel(config, blocks)


def size_griffin(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> GriffinConfig:
    """Hawk's rules for the recurrent blocks; attention heads = the gate blocks (d_model / head_dim);
    window ``min(1024, seq_len // 2)``; at least 3 layers so there is an attention block."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> GriffinConfig:
        values = {**fixed, **recurrent_shape(d_model, fixed)}
        seq_len = fixed.get("seq_len", GriffinConfig.seq_len)
        values.setdefault("window", max(1, min(PAPER_WINDOW, seq_len // 2)))
        return GriffinConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    return size_by_search(
        target,
        overrides,
        derive,
        trim_field="ffn_hidden",
        trim_values=swiglu_trim_range,
        min_layers=ATTENTION_PERIOD,
    )


ARCHITECTURE = Architecture(
    name="griffin",
    config_class=GriffinConfig,
    build=build_griffin,
    size_config=size_griffin,
    description="Griffin: Hawk's RG-LRU blocks with local sliding-window MQA every third layer, GeGLU MLPs",
    paper="De et al. 2024, Griffin: Mixing Gated Linear Recurrences with Local Attention (arXiv:2402.19427)",
)
