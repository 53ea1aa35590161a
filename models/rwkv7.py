"""RWKV-7 "Goose" (Peng et al. 2025, arXiv:2503.14456), following the official RWKV-LM ``RWKV-v7`` code.

Time mix, per head of size N (state ``S`` is ``[N, N]``, key rows; ``kernels.delta`` for the kernel)::

    x*_t = x_t + (x_{t-1} - x_t) * mu_*                                   token shift, * in r w k v a g
    r, k, v = W_r xr, W_k xk, W_v xv
    w_t  = -0.606531 * sigmoid(w0 + tanh(xw A_w) B_w)                      log decay in (-e^-1/2, 0)
    a_t  = sigmoid(a0 + xa A_a B_a)                                         in-context learning rate
    v_t  = v_t + (v_first_t - v_t) * sigmoid(v0 + xv A_v B_v)               value residual (layers > 0)
    g_t  = sigmoid(xg A_g) B_g                                              output gate
    kk_t = normalize(k_t * k_k) per head;  k_t = k_t * (1 + (a_t - 1) * k_a)
    S_t  = (diag(exp(w_t)) - kk_t (a_t * kk_t)^T) S_{t-1} + k_t v_t^T      o_t = S_t^T r_t
    y_t  = W_o [ (GroupNorm_head(o_t) + ((r_t * k_t * r_k).sum_head) v_t) * g_t ]

Channel mix: ``W_v relu(W_k (x + (x_{t-1} - x) * mu_k))^2`` with a 4x hidden width. Each block is
``x + tmix(norm(x))``, ``x + cmix(norm(x))``; ``v_first`` (layer 0's values, per token) is threaded
through the blocks in both the training and the step-by-step form. Shape suffixes: B batch, T time,
C d_model, H heads, N head size, F channel-mix hidden, R LoRA rank.
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
from kernels.delta import generalized_delta_rule_step
from models.blocks import RMSNorm
from models.lm import LanguageModel, ModelConfig
from models.registry import Architecture
from models.sizing import default_head_dim, size_by_search

DECAY_SCALE = (
    0.606531  # e^-1/2: the official soft clamp exp(-exp(-softplus(-z) - 0.5)) = exp(-e^-1/2 sigmoid(z))
)
GROUP_NORM_EPS = 64e-5  # the official ln_x eps (1e-5 * head_size_divisor^2)
MIX_ORDER = ("r", "w", "k", "v", "a", "g")


@dataclass(frozen=True, kw_only=True)
class RWKV7Config(ModelConfig):
    head_dim: int  # 64 in the paper; n_heads = d_model / head_dim
    ffn_hidden: int  # channel-mix hidden width, 4 d_model
    decay_lora: int
    iclr_lora: int  # the in-context learning rate a
    value_lora: int  # the value-residual gate
    gate_lora: int
    chunk_size: int = 32  # chunk length of the training kernel (no effect on the maths)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (
            "head_dim",
            "ffn_hidden",
            "decay_lora",
            "iclr_lora",
            "value_lora",
            "gate_lora",
            "chunk_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RWKV7Config.{name} must be a positive int, got {value!r}")
        if self.d_model % self.head_dim:
            raise ValueError(f"RWKV7Config.head_dim={self.head_dim} must divide d_model={self.d_model}")

    @property
    def n_heads(self) -> int:
        return self.d_model // self.head_dim

    def non_embedding_params(self) -> int:
        """Exact count. Time mix: 6 shift mixes, r/k/v/o, LoRAs (two matrices and a bias each; the
        value-residual LoRA only in layers > 0), k_k, k_a, r_k, GroupNorm weight and bias. Channel mix:
        its shift mix and two matrices. Two block norms per layer and the final norm."""
        C = self.d_model
        lora = 2 * C * (self.decay_lora + self.iclr_lora + self.gate_lora) + 2 * C  # w0, a0 (g has none)
        tmix = 6 * C + 4 * C * C + lora + 3 * C + 2 * C
        cmix = C + 2 * C * self.ffn_hidden
        value_residual = (self.n_layers - 1) * (2 * C * self.value_lora + C)
        return self.n_layers * (tmix + cmix + 2 * C) + value_residual + C


def _orthogonal_(weight: torch.Tensor, gain: float) -> None:
    """The official ``ortho_init`` on the official ``[in, out]`` shape, written into a Linear's
    ``[out, in]`` weight (gain sqrt(rows / cols) for tall matrices)."""
    rows, cols = weight.shape[1], weight.shape[0]
    official = torch.empty(rows, cols, device=weight.device, dtype=weight.dtype)
    nn.init.orthogonal_(official, gain=gain * (math.sqrt(rows / cols) if rows > cols else 1.0))
    weight.copy_(official.T)


class LoRA(nn.Module):
    """``B(act(A x))`` with ``A`` zero-initialised and ``B`` orthogonal * 0.1 (official)."""

    def __init__(self, d_model: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, rank, bias=False)
        self.up = nn.Linear(rank, d_model, bias=False)

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        self.down.weight.zero_()
        _orthogonal_(self.up.weight, 0.1)

    def forward(self, x: torch.Tensor, activation=None) -> torch.Tensor:
        h = self.down(x)
        return self.up(h if activation is None else activation(h))


class TimeMix(nn.Module):
    def __init__(self, config: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        self.config, self.layer_id = config, layer_id
        C, H, N = config.d_model, config.n_heads, config.head_dim
        self.mix_6C = nn.Parameter(torch.empty(6, C))  # token-shift lerps, rows in MIX_ORDER
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.decay_lora, self.w0 = LoRA(C, config.decay_lora), nn.Parameter(torch.empty(C))
        self.iclr_lora, self.a0 = LoRA(C, config.iclr_lora), nn.Parameter(torch.empty(C))
        self.gate_lora = LoRA(C, config.gate_lora)
        if layer_id > 0:
            self.value_lora, self.v0 = LoRA(C, config.value_lora), nn.Parameter(torch.empty(C))
        self.k_k = nn.Parameter(torch.empty(C))
        self.k_a = nn.Parameter(torch.empty(C))
        self.r_k = nn.Parameter(torch.empty(H, N))
        self.ln_x_weight = nn.Parameter(torch.empty(C))
        self.ln_x_bias = nn.Parameter(torch.empty(C))

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """The official RWKV-7 initialisation (``RWKV_Tmix_x070.__init__`` and ``generate_init_weight``)."""
        C, N, L = self.config.d_model, self.config.head_dim, self.config.n_layers
        ratio_0_to_1 = self.layer_id / max(L - 1, 1)
        ratio_1_to_almost0 = 1.0 - self.layer_id / L
        device = self.mix_6C.device
        n = torch.arange(C, device=device, dtype=torch.float32)
        ddd = n / C
        linear = n / max(C - 1, 1) - 0.5
        zigzag = ((n % N) - (N - 1) / 2) / max((N - 1) / 2, 1e-9)
        zigzag = zigzag * zigzag.abs()
        www = -6 + 6 * (n / max(C - 1, 1)) ** (1 + ratio_0_to_1**0.3)
        powers = torch.tensor([0.2, 0.9, 0.7, 0.7, 0.9, 0.2], device=device)  # r w k v a g
        self.mix_6C.copy_(1.0 - ddd[None, :] ** (powers[:, None] * ratio_1_to_almost0))
        self.w0.copy_(www + 0.5 + zigzag * 2.5)
        self.a0.copy_(-0.19 + zigzag * 0.3 + linear * 0.4)
        if self.layer_id > 0:
            self.v0.copy_(0.73 - linear * 0.4)
        self.k_k.copy_(0.71 - linear * 0.1)
        self.k_a.fill_(1.02)
        self.r_k.fill_(-0.04)
        self.ln_x_weight.fill_(((1 + self.layer_id) / L) ** 0.7)
        self.ln_x_bias.zero_()
        _orthogonal_(self.receptance.weight, 1.0)
        _orthogonal_(self.key.weight, 0.1)
        _orthogonal_(self.value.weight, 1.0)
        self.output.weight.zero_()

    def _mix(self, x: torch.Tensor, x_prev: torch.Tensor, v_first: torch.Tensor | None):
        """Everything before the recurrence, for ``[B, T, C]`` or ``[B, C]`` inputs: per-head
        ``r, w, k, v, a=-kk, b=kk*iclr`` (w and the kernel inputs in fp32), the gate and v_first."""
        c = self.config
        lead = x.shape[:-1]
        xr, xw, xk, xv, xa, xg = (x + (x_prev - x) * mu.to(x.dtype) for mu in self.mix_6C)
        r, k, v = self.receptance(xr), self.key(xk), self.value(xv)
        w = -DECAY_SCALE * torch.sigmoid(self.w0.float() + self.decay_lora(xw, torch.tanh).float())
        if v_first is None:  # layer 0 provides the value residual for every later layer
            v_first = v
        else:
            gate = torch.sigmoid(self.v0.float() + self.value_lora(xv).float())
            v = (v.float() + (v_first.float() - v.float()) * gate).to(v.dtype)
        iclr = torch.sigmoid(self.a0.float() + self.iclr_lora(xa).float())
        g = self.gate_lora(xg, torch.sigmoid)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.float().reshape(*lead, c.n_heads, c.head_dim)

        r, w, k, v, iclr = (heads(t) for t in (r, w, k, v, iclr))
        k_k, k_a = (p.float().reshape(c.n_heads, c.head_dim) for p in (self.k_k, self.k_a))
        kk = F.normalize(k * k_k, dim=-1)
        k = k * (1 + (iclr - 1) * k_a)
        return (r, w, k, v, -kk, kk * iclr), g, v_first

    def _out(self, o_xHN: torch.Tensor, r, k, v, g: torch.Tensor) -> torch.Tensor:
        """Per-head GroupNorm of the kernel output, the bonus ``(r . (k * r_k)) v``, gate, projection."""
        mean = o_xHN.mean(-1, keepdim=True)
        var = o_xHN.var(-1, unbiased=False, keepdim=True)
        normed = ((o_xHN - mean) * torch.rsqrt(var + GROUP_NORM_EPS)).flatten(-2)
        normed = normed * self.ln_x_weight.float() + self.ln_x_bias.float()
        bonus = ((r * k * self.r_k.float()).sum(-1, keepdim=True) * v).flatten(-2)
        return self.output(((normed + bonus) * g.float()).to(g.dtype))

    def forward(self, x_BTC: torch.Tensor, v_first_BTC: torch.Tensor | None):
        y_BTC, _, v_first_BTC = self.prefill(x_BTC, v_first_BTC)
        return y_BTC, v_first_BTC

    def prefill(self, x_BTC: torch.Tensor, v_first_BTC: torch.Tensor | None):
        """``forward`` plus the final ``[N, N]`` state per head from the chunked kernel."""
        x_prev_BTC = F.pad(x_BTC, (0, 0, 1, -1))  # x_{t-1}, zeros before the first token
        (r, w, k, v, a, b), g, v_first_BTC = self._mix(x_BTC, x_prev_BTC, v_first_BTC)
        o_BTHN, S_BHNN = dispatch.get("chunk_generalized_delta_rule", r.device)(
            r, w, k, v, a, b, chunk_size=self.config.chunk_size
        )
        return self._out(o_BTHN, r, k, v, g), S_BHNN, v_first_BTC

    def step(self, x_BC: torch.Tensor, x_prev_BC: torch.Tensor, S_BHNN: torch.Tensor, v_first_BC):
        (r, w, k, v, a, b), g, v_first_BC = self._mix(x_BC, x_prev_BC.to(x_BC.dtype), v_first_BC)
        o_BHN, S_BHNN = generalized_delta_rule_step(r, w, k, v, a, b, S_BHNN)
        return self._out(o_BHN, r, k, v, g), S_BHNN, v_first_BC


class ChannelMix(nn.Module):
    """``value(relu(key(x + (x_{t-1} - x) * mu_k))^2)``, the RWKV-7 feed-forward."""

    def __init__(self, config: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        self.config, self.layer_id = config, layer_id
        self.mix_C = nn.Parameter(torch.empty(config.d_model))
        self.key = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.value = nn.Linear(config.ffn_hidden, config.d_model, bias=False)

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        C = self.config.d_model
        ddd = torch.arange(C, device=self.mix_C.device, dtype=torch.float32) / C
        self.mix_C.copy_(1.0 - ddd ** ((1.0 - self.layer_id / self.config.n_layers) ** 4))
        _orthogonal_(self.key.weight, 1.0)
        self.value.weight.zero_()

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        h = self.key(x + (x_prev - x) * self.mix_C.to(x.dtype))
        return self.value(torch.relu(h).square())


class RWKV7Block(nn.Module):
    """``x + tmix(norm(x), v_first)``, ``x + cmix(norm(x))``; the step form keeps both shifts' last input."""

    def __init__(self, config: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        self.config = config
        self.tmix_norm, self.tmix = RMSNorm(config.d_model, config.norm_eps), TimeMix(config, layer_id)
        self.cmix_norm, self.cmix = RMSNorm(config.d_model, config.norm_eps), ChannelMix(config, layer_id)

    def forward(self, x_BTC: torch.Tensor, v_first_BTC: torch.Tensor | None):
        dx_BTC, v_first_BTC = self.tmix(self.tmix_norm(x_BTC), v_first_BTC)
        x_BTC = x_BTC + dx_BTC
        h_BTC = self.cmix_norm(x_BTC)
        return x_BTC + self.cmix(h_BTC, F.pad(h_BTC, (0, 0, 1, -1))), v_first_BTC

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        return {
            "tmix_prev_BC": torch.zeros(batch, c.d_model, device=device, dtype=dtype),
            "cmix_prev_BC": torch.zeros(batch, c.d_model, device=device, dtype=dtype),
            "S_BHNN": torch.zeros(
                batch, c.n_heads, c.head_dim, c.head_dim, device=device, dtype=torch.float32
            ),
        }

    def step(self, x_BC: torch.Tensor, state: dict[str, torch.Tensor], pos: int, v_first_BC):
        h_BC = self.tmix_norm(x_BC)
        dx_BC, state["S_BHNN"], v_first_BC = self.tmix.step(
            h_BC, state["tmix_prev_BC"], state["S_BHNN"], v_first_BC
        )
        state["tmix_prev_BC"] = h_BC
        x_BC = x_BC + dx_BC
        h_BC = self.cmix_norm(x_BC)
        x_BC = x_BC + self.cmix(h_BC, state["cmix_prev_BC"].to(h_BC.dtype))
        state["cmix_prev_BC"] = h_BC
        return x_BC, state, v_first_BC

    def prefill(self, x_BTC: torch.Tensor, state: dict[str, torch.Tensor], v_first_BTC):
        """``forward`` over positions ``0..T-1`` and the state after them (kernel state, last inputs of
        both token shifts); ``state`` (empty, from ``init_state``) only gives the shifts' dtype."""
        h_BTC = self.tmix_norm(x_BTC)
        dx_BTC, S_BHNN, v_first_BTC = self.tmix.prefill(h_BTC, v_first_BTC)
        x_BTC = x_BTC + dx_BTC
        g_BTC = self.cmix_norm(x_BTC)
        x_BTC = x_BTC + self.cmix(g_BTC, F.pad(g_BTC, (0, 0, 1, -1)))
        dtype = state["tmix_prev_BC"].dtype
        state = {
            # copies: a view would keep the whole [B, T, C] activations in the state
            "tmix_prev_BC": h_BTC[:, -1].to(dtype, copy=True),
            "cmix_prev_BC": g_BTC[:, -1].to(dtype, copy=True),
            "S_BHNN": S_BHNN,
        }
        return x_BTC, state, v_first_BTC

    def matmul_params(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def state_size(self, seq_len: int) -> int:
        """The ``[N, N]`` state of every head plus the two token shifts' previous inputs."""
        c = self.config
        return c.n_heads * c.head_dim * c.head_dim + 2 * c.d_model

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Forward flops per token of the chunked kernel's matmuls (``kernels/delta/chunk.py``), per
        head with chunk size C: nine C x C-by-N products (18CN), five N x N-sized ones (10N^2), the
        carried transition (2N^3 / C) and the triangular inverse (~C^2 / 3). Flat in seq_len."""
        c = self.config
        C, N = c.chunk_size, c.head_dim
        return c.n_heads * (18 * C * N + 10 * N * N + (2 * N**3 + C**3 // 3) // C)


class RWKV7LanguageModel(LanguageModel):
    """The shared shell, with layer 0's values (``v_first``) passed to every later block."""

    def forward(self, tokens_BT: torch.Tensor) -> torch.Tensor:
        if tokens_BT.ndim != 2:
            raise ValueError(f"tokens must be [batch, time], got shape {tuple(tokens_BT.shape)}")
        x_BTC, v_first_BTC = self.embed(tokens_BT), None
        for block in self.blocks:
            x_BTC, v_first_BTC = block(x_BTC, v_first_BTC)
        return self._logits(x_BTC)

    def step(self, tokens_B: torch.Tensor, state):
        if tokens_B.ndim != 1:
            raise ValueError(f"step takes tokens of shape [batch], got {tuple(tokens_B.shape)}")
        x_BC, v_first_BC = self.embed(tokens_B), None  # v_first of this token, made by layer 0
        for index, block in enumerate(self.blocks):
            x_BC, state.layers[index], v_first_BC = block.step(
                x_BC, state.layers[index], state.pos, v_first_BC
            )
        state.pos += 1
        return self._logits(x_BC), state

    def prefill(self, tokens_BT: torch.Tensor, *, last_only: bool = False):
        """``LanguageModel.prefill`` with ``v_first`` threaded from layer 0 through the blocks."""
        if tokens_BT.ndim != 2:
            raise ValueError(f"tokens must be [batch, time], got shape {tuple(tokens_BT.shape)}")
        state = self.init_state(tokens_BT.shape[0])
        x_BTC, v_first_BTC = self.embed(tokens_BT), None
        for index, block in enumerate(self.blocks):
            x_BTC, state.layers[index], v_first_BTC = block.prefill(x_BTC, state.layers[index], v_first_BTC)
        state.pos = tokens_BT.shape[1]
        return self._logits(x_BTC[:, -1:] if last_only else x_BTC), state


def build_rwkv7(config: RWKV7Config) -> RWKV7LanguageModel:
    return RWKV7LanguageModel(config, [RWKV7Block(config, i) for i in range(config.n_layers)])


# -- sizing ---------------------------------------------------------------------------------------------


def lora_rank(factor: float, d_model: int) -> int:
    """The official suggestion ``max(32, round(factor * sqrt(C) / 32) * 32)`` from C = 512; below, the
    same curve rounded to multiples of 8 (at least 8) so small models are not dominated by LoRAs.
    Factors: decay 2.5, iclr 2.5, value residual 1.7, gate 5."""
    step = 32 if d_model >= 512 else 8
    return max(step, step * round(factor * math.sqrt(d_model) / step))


def _derive(n_layers: int, d_model: int, vocab_size: int, fixed: Mapping[str, Any]) -> RWKV7Config:
    values = {
        "head_dim": default_head_dim(d_model),
        "ffn_hidden": 4 * d_model,
        "decay_lora": lora_rank(2.5, d_model),
        "iclr_lora": lora_rank(2.5, d_model),
        "value_lora": lora_rank(1.7, d_model),
        "gate_lora": lora_rank(5.0, d_model),
        **fixed,
    }
    return RWKV7Config(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)


def size_rwkv7(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> RWKV7Config:
    """``search_shape`` over (n_layers, d_model) with ``_derive``'s rule; when the width grid is too
    coarse (small models) the channel-mix width moves within [3d, 5d] to land within 5%. A fixed
    ``head_dim`` limits the search to the widths it divides (``RWKV7Config`` rejects the others)."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> RWKV7Config:
        return _derive(n_layers, d_model, vocab_size, fixed)

    def ffn_range(config: RWKV7Config) -> range:
        """RWKV's channel mix is a squared-ReLU MLP of ~4d: its trim range is [3d, 5d]."""
        return range(3 * config.d_model, 5 * config.d_model + 1, 8 if config.d_model >= 64 else 4)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=ffn_range)


ARCHITECTURE = Architecture(
    name="rwkv7",
    config_class=RWKV7Config,
    build=build_rwkv7,
    size_config=size_rwkv7,
    description="RWKV-7 Goose: generalised delta rule with vector decay (chunked), value residual, squared-ReLU channel mix",
    paper="Peng et al. 2025, RWKV-7 Goose with Expressive Dynamic State Evolution (arXiv:2503.14456)",
)
