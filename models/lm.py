"""The language-model shell every architecture shares, and the per-block hooks it calls.

``LanguageModel`` = token embedding -> ``n_layers`` blocks -> final RMSNorm -> output head. It implements
the model contract (``forward``, ``init_state``/``step``, ``num_params``, ``flops_per_token``,
``state_size``) once; an architecture only writes its token mixer (and, if it needs one, its own block).

A **mixer** maps ``x_BTD -> y_BTD`` and provides:

- ``init_state(batch, *, device, dtype)`` -> its decode state (KV cache, recurrent state, ...);
- ``step(x_BD, state, pos) -> (y_BD, state)``: one token at position ``pos`` (same for the whole batch),
  giving the same output as ``forward`` gives at that position;
- optionally ``prefill(x_BTD, state) -> (y_BTD, state)``: ``forward``'s output for positions ``0..T-1``
  and the decode state after them, from ``init_state``'s empty state, through the training form (chunked
  kernels that return their final state). Without it ``LanguageModel.prefill`` feeds the positions
  through ``step`` one at a time (:func:`step_through`): same result, ``T`` Python iterations;
- ``state_size(seq_len) -> int``: numbers held per sequence at inference after ``seq_len`` tokens;
- ``extra_flops_per_token(seq_len) -> int``: FORWARD flops per token not already counted as
  ``2 * weight-matrix params`` (attention scores, a recurrence's state update, ...).

``ResidualBlock`` wraps a mixer and an optional MLP pre-norm style (``x + mixer(norm(x))``,
``x + mlp(norm(x))``) and forwards those hooks; a block with another layout must offer the same five
methods plus ``matmul_params()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import RMSNorm

ParamKind = Literal["total", "embedding", "non_embedding"]


def check_positive_ints(config: Any, names: Iterable[str]) -> None:
    """Raise a ``ValueError`` naming the first of the fields ``names`` of ``config`` that is not an int >= 1
    (``bool`` rejected: ``True`` is an int to Python, never a width)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Fields every architecture has. Subclasses add their own (frozen, keyword-only)."""

    vocab_size: int
    d_model: int
    n_layers: int
    seq_len: int = 2048  # training context; also the KV-cache length for step-by-step decoding
    tie_embeddings: bool = False  # output head shares the token-embedding matrix
    norm_eps: float = 1e-5
    init_std: float = 0.02  # GPT-2 / nanoGPT / Llama std for every weight matrix

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive int, got {value!r}")
        if not self.init_std > 0:
            raise ValueError(f"{type(self).__name__}.init_std must be > 0, got {self.init_std!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"unknown field(s) for {cls.__name__}: {', '.join(unknown)}; "
                f"valid fields: {', '.join(cls.field_names())}"
            )
        return cls(**values)


@dataclass
class DecodeState:
    """Step-by-step decoding state: the next position and one state object per block."""

    pos: int
    layers: list[Any] = field(default_factory=list)


def step_through(
    module: nn.Module, x_BTD: torch.Tensor, state: Any, start: int = 0
) -> tuple[torch.Tensor, Any]:
    """The generic prefill: ``module.step`` on each position of ``x_BTD`` in turn (positions ``start..``).

    Exact for every block or mixer honouring the step contract, but one Python iteration per token, so
    slow for long contexts; mixers whose kernels return a final state override it with ``prefill``."""
    outputs = []
    for t in range(x_BTD.shape[1]):
        y_BD, state = module.step(x_BTD[:, t], state, start + t)
        outputs.append(y_BD)
    return torch.stack(outputs, dim=1), state


def prefill_through(module: nn.Module, x_BTD: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """``module.prefill`` when it has one, else :func:`step_through` from position 0."""
    prefill = getattr(module, "prefill", None)
    return prefill(x_BTD, state) if prefill is not None else step_through(module, x_BTD, state)


class ResidualBlock(nn.Module):
    """Pre-norm residual block: ``x + mixer(norm(x))`` then, if present, ``x + mlp(norm(x))``."""

    def __init__(self, d_model: int, mixer: nn.Module, mlp: nn.Module | None, norm_eps: float) -> None:
        super().__init__()
        self.mixer_norm = RMSNorm(d_model, norm_eps)
        self.mixer = mixer
        self.mlp_norm = RMSNorm(d_model, norm_eps) if mlp is not None else None
        self.mlp = mlp

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_BTD = x_BTD + self.mixer(self.mixer_norm(x_BTD))
        if self.mlp is not None:
            x_BTD = x_BTD + self.mlp(self.mlp_norm(x_BTD))
        return x_BTD

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> Any:
        return self.mixer.init_state(batch, device=device, dtype=dtype)

    def step(self, x_BD: torch.Tensor, state: Any, pos: int) -> tuple[torch.Tensor, Any]:
        y_BD, state = self.mixer.step(self.mixer_norm(x_BD), state, pos)
        x_BD = x_BD + y_BD
        if self.mlp is not None:
            x_BD = x_BD + self.mlp(self.mlp_norm(x_BD))
        return x_BD, state

    def prefill(self, x_BTD: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """``forward`` over positions ``0..T-1`` plus the mixer's state after them (see the module doc)."""
        y_BTD, state = prefill_through(self.mixer, self.mixer_norm(x_BTD), state)
        x_BTD = x_BTD + y_BTD
        if self.mlp is not None:
            x_BTD = x_BTD + self.mlp(self.mlp_norm(x_BTD))
        return x_BTD, state

    def matmul_params(self) -> int:
        """Weights used as matmul operands: each costs 2 forward flops per token."""
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def state_size(self, seq_len: int) -> int:
        return self.mixer.state_size(seq_len)

    def extra_flops_per_token(self, seq_len: int) -> int:
        return self.mixer.extra_flops_per_token(seq_len)


class LanguageModel(nn.Module):
    """Embedding -> blocks -> final norm -> head. ``tokens[B,T] (long) -> logits[B,T,V]``.

    Parameter accounting convention (Kaplan et al. 2020; Chinchilla's "non-embedding" N):
    ``embedding`` = the token-embedding matrix plus, when untied, the output (unembedding) matrix;
    ``non_embedding`` = everything else (all block weights, all norms including the final one).
    With tied embeddings the shared matrix is counted once, as embedding.
    """

    def __init__(self, config: ModelConfig, blocks: list[nn.Module]) -> None:
        super().__init__()
        if len(blocks) != config.n_layers:
            raise ValueError(f"got {len(blocks)} blocks for n_layers={config.n_layers}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.head = (
            None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        )
        self.reset_parameters()

    # -- init ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, init_std) for every embedding and linear weight; norms to 1.

        Projections marked ``is_residual_output`` (attention output, MLP down, a mixer's out_proj) get
        std / sqrt(2 * n_layers), as in GPT-2 and nanoGPT: the residual stream is a sum of 2 * n_layers
        branch outputs, so scaling each branch's last matrix keeps the stream's variance at init from
        growing with depth. A module with special parameters (decay rates, conv kernels, ...) can define
        ``init_extra_parameters()``; it is called after the generic pass.
        """
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layers)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                is_residual_output = getattr(module, "is_residual_output", False)
                nn.init.normal_(module.weight, 0.0, residual_std if is_residual_output else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
            elif isinstance(module, RMSNorm):
                module.reset_parameters()
        for module in self.modules():
            if module is not self and hasattr(module, "init_extra_parameters"):
                module.init_extra_parameters()

    # -- training form ------------------------------------------------------------------------------

    def _logits(self, h_xD: torch.Tensor) -> torch.Tensor:
        h_xD = self.norm(h_xD)
        if self.head is None:
            return F.linear(h_xD, self.embed.weight)
        return self.head(h_xD)

    def forward(self, tokens_BT: torch.Tensor) -> torch.Tensor:
        if tokens_BT.ndim != 2:
            raise ValueError(f"tokens must be [batch, time], got shape {tuple(tokens_BT.shape)}")
        x_BTD = self.embed(tokens_BT)
        for block in self.blocks:
            x_BTD = block(x_BTD)
        return self._logits(x_BTD)

    # -- step-by-step form --------------------------------------------------------------------------

    def init_state(
        self, batch: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DecodeState:
        """Empty decode state for ``batch`` sequences (device/dtype default to the model's)."""
        device = self.embed.weight.device if device is None else device
        dtype = self.embed.weight.dtype if dtype is None else dtype
        layers = [block.init_state(batch, device=device, dtype=dtype) for block in self.blocks]
        return DecodeState(pos=0, layers=layers)

    def step(self, tokens_B: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        """Feed one token per sequence; returns ``logits[B,V]`` equal to ``forward``'s at this position."""
        if tokens_B.ndim != 1:
            raise ValueError(f"step takes tokens of shape [batch], got {tuple(tokens_B.shape)}")
        x_BD = self.embed(tokens_B)
        for index, block in enumerate(self.blocks):
            x_BD, state.layers[index] = block.step(x_BD, state.layers[index], state.pos)
        state.pos += 1
        return self._logits(x_BD), state

    def prefill(
        self, tokens_BT: torch.Tensor, *, last_only: bool = False
    ) -> tuple[torch.Tensor, DecodeState]:
        """Read a whole context at once: ``(logits, state)`` with ``logits`` equal to ``forward(tokens_BT)``
        (``[B,T,V]``, or only the last position ``[B,1,V]`` with ``last_only``, which saves ``B*T*V``
        numbers at long contexts) and ``state`` ready for ``step`` at position ``T``.

        Each block uses its chunked training form with a state-returning ``prefill`` when it has one and
        falls back to stepping token by token otherwise (:func:`prefill_through`).
        """
        if tokens_BT.ndim != 2:
            raise ValueError(f"tokens must be [batch, time], got shape {tuple(tokens_BT.shape)}")
        state = self.init_state(tokens_BT.shape[0])
        x_BTD = self.embed(tokens_BT)
        for index, block in enumerate(self.blocks):
            x_BTD, state.layers[index] = prefill_through(block, x_BTD, state.layers[index])
        state.pos = tokens_BT.shape[1]
        return self._logits(x_BTD[:, -1:] if last_only else x_BTD), state

    # -- accounting ---------------------------------------------------------------------------------

    def num_params(self, kind: ParamKind = "total") -> int:
        total = sum(p.numel() for p in self.parameters())  # parameters() yields a tied matrix once
        embedding = self.embed.weight.numel() + (0 if self.head is None else self.head.weight.numel())
        counts = {"total": total, "embedding": embedding, "non_embedding": total - embedding}
        if kind not in counts:
            raise ValueError(f"kind must be one of {sorted(counts)}, got {kind!r}")
        return counts[kind]

    def matmul_params(self) -> int:
        """Non-embedding weights used as matmul operands (norm gains excluded)."""
        return sum(block.matmul_params() for block in self.blocks)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """TRAINING flops per token (forward + backward = 3 x forward) at context ``seq_len``.

        forward = 2 * (matmul_params + d_model * vocab_size) + sum of the blocks' extra_flops_per_token
        training = 3 * forward

        - 2 flops (multiply + add) per weight per token for every matmul; the unembedding (logits)
          matmul counts whether tied or not, the embedding lookup is a gather and counts 0.
        - The backward pass costs twice the forward (gradients w.r.t. inputs and weights).
        - Elementwise work (norms, activations, RoPE, softmax, residual adds) is left out, as in
          Kaplan et al. 2020 Table 1 (< 1-2% at the sizes studied).
        - For the Transformer the extra term is the attention sequence term; see
          ``models.transformer.Attention.extra_flops_per_token``: in total
          ``6 * (N_matmul + d*V) + 6 * n_layers * d_attn * (seq_len + 1)``.
        """
        seq_len = self.config.seq_len if seq_len is None else seq_len
        forward = 2 * (self.matmul_params() + self.config.d_model * self.config.vocab_size)
        forward += sum(block.extra_flops_per_token(seq_len) for block in self.blocks)
        return 3 * forward

    def state_size(self, seq_len: int | None = None) -> int:
        """Numbers held per sequence at inference after ``seq_len`` tokens (KV cache, recurrent state)."""
        seq_len = self.config.seq_len if seq_len is None else seq_len
        return sum(block.state_size(seq_len) for block in self.blocks)
