"""RWKV-6 "Finch" (Peng et al. 2024, "Eagle and Finch: RWKV with Matrix-Valued States and Dynamic
Recurrence", arXiv:2404.05892), following the official RWKV-LM ``RWKV_Tmix_x060`` / ``RWKV_CMix_x060``.

Time mix, per head of size N (state ``S`` is ``[N, N]``, key rows)::

    dx     = x_{t-1} - x_t                                               token shift
    m_*    = tanh((x + dx * mu_x) A) B_*                                  ddlerp: data-dependent mixes (rank R)
    x*     = x + dx * (mu_* + m_*)                                        * in w k v r g
    r, k, v, g = W_r xr, W_k xk, W_v xv, silu(W_g xg)
    w_t    = time_decay + tanh(xw A_w) B_w;   log decay = -exp(w_t)       data-dependent decay (rank R_w)
    o_t    = (S_{t-1} + diag(u) k_t v_t^T)^T r_t,   S_t = diag(exp(-exp(w_t))) S_{t-1} + k_t v_t^T
    y_t    = W_o [ GroupNorm_heads(o_t) * g_t ]

Channel mix: ``sigmoid(W_r xr) * W_v relu(W_k xk)^2`` with token-shifted ``xk``, ``xr`` (hidden 3.5 d).
Each block is ``x + tmix(norm(x))``, ``x + cmix(norm(x))``. The kernel is ``kernels.gla.chunk_gla`` with
per-channel decays and the bonus ``u`` (``time_faaaa``). Shape suffixes: B batch, T time, C d_model, H heads,
N head size, F channel-mix hidden, R LoRA rank.
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
from models.blocks import RMSNorm
from models.lm import LanguageModel, ModelConfig, check_positive_ints
from models.registry import Architecture
from models.sizing import default_head_dim, size_by_search

GROUP_NORM_EPS = 64e-5  # the official ln_x eps: 1e-5 * head_size_divisor^2 (8^2)
MIX_ORDER = ("w", "k", "v", "r", "g")  # the official unbind order of the ddlerp LoRA


@dataclass(frozen=True, kw_only=True)
class RWKV6Config(ModelConfig):
    head_dim: int  # 64 in the paper; n_heads = d_model / head_dim
    ffn_hidden: int  # channel-mix hidden, 3.5 d rounded (official dim_ffn)
    mix_lora: int  # ddlerp rank (official D_MIX_LORA = 32)
    decay_lora: int  # decay rank (official D_DECAY_LORA = 64)
    chunk_size: int = 64  # chunk length of the training kernel (no effect on the maths)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(self, ("head_dim", "ffn_hidden", "mix_lora", "decay_lora", "chunk_size"))
        if self.d_model % self.head_dim:
            raise ValueError(f"RWKV6Config.head_dim={self.head_dim} must divide d_model={self.d_model}")

    @property
    def n_heads(self) -> int:
        return self.d_model // self.head_dim

    def non_embedding_params(self) -> int:
        """Exact count. Time mix: 6 static mixes, the ddlerp LoRA (C x 5R down, five R x C ups), the
        decay base and its LoRA, the bonus u, r/k/v/g/o, GroupNorm weight and bias. Channel mix: two
        mixes, key, receptance, value. Two block norms per layer and the final norm."""
        C, R, Rw = self.d_model, self.mix_lora, self.decay_lora
        tmix = 6 * C + 10 * C * R + C + 2 * C * Rw + C + 5 * C * C + 2 * C
        cmix = 2 * C + 2 * C * self.ffn_hidden + C * C
        return self.n_layers * (tmix + cmix + 2 * C) + C


def _token_shift(x_BTC: torch.Tensor) -> torch.Tensor:
    """``x_{t-1}`` (zeros before the first token)."""
    return F.pad(x_BTC, (0, 0, 1, -1))


class TimeMix(nn.Module):
    def __init__(self, config: RWKV6Config, layer_id: int) -> None:
        super().__init__()
        self.config, self.layer_id = config, layer_id
        C, R = config.d_model, config.mix_lora
        self.maa_x = nn.Parameter(torch.empty(C))
        self.maa_5C = nn.Parameter(torch.empty(5, C))  # static mixes, rows in MIX_ORDER
        self.mix_down = nn.Linear(C, 5 * R, bias=False)  # official time_maa_w1
        self.mix_up = nn.ModuleList(nn.Linear(R, C, bias=False) for _ in MIX_ORDER)  # time_maa_w2
        self.time_decay = nn.Parameter(torch.empty(C))
        self.decay_down = nn.Linear(C, config.decay_lora, bias=False)  # time_decay_w1
        self.decay_up = nn.Linear(config.decay_lora, C, bias=False)  # time_decay_w2
        self.time_faaaa = nn.Parameter(torch.empty(config.n_heads, config.head_dim))  # the bonus u
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.gate = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x_weight = nn.Parameter(torch.empty(C))
        self.ln_x_bias = nn.Parameter(torch.empty(C))

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """The official x060 initialisation (``RWKV_Tmix_x060.__init__``, ``generate_init_weight``)."""
        C, L = self.config.d_model, self.config.n_layers
        ratio_0_to_1 = self.layer_id / max(L - 1, 1)
        ratio_1_to_almost0 = 1.0 - self.layer_id / L
        n = torch.arange(C, device=self.maa_x.device, dtype=torch.float32)
        ddd = n / C
        self.maa_x.copy_(1.0 - ddd**ratio_1_to_almost0)
        mixes = {
            "w": 1.0 - ddd**ratio_1_to_almost0,
            "k": 1.0 - ddd**ratio_1_to_almost0,
            "v": 1.0 - (ddd**ratio_1_to_almost0 + 0.3 * ratio_0_to_1),
            "r": 1.0 - ddd ** (0.5 * ratio_1_to_almost0),
            "g": 1.0 - ddd ** (0.5 * ratio_1_to_almost0),
        }
        self.maa_5C.copy_(torch.stack([mixes[name] for name in MIX_ORDER]))
        self.mix_down.weight.zero_()
        for up in self.mix_up:
            up.weight.uniform_(-0.01, 0.01)
        position = n / max(C - 1, 1)
        self.time_decay.copy_(-6.0 + 5.0 * position ** (0.7 + 1.3 * ratio_0_to_1))
        self.decay_down.weight.zero_()
        self.decay_up.weight.uniform_(-0.01, 0.01)
        zigzag = ((n + 1) % 3 - 1) * 0.1
        self.time_faaaa.copy_((ratio_0_to_1 * (1.0 - position) + zigzag).reshape(self.time_faaaa.shape))
        for linear, gain in ((self.receptance, 1.0), (self.key, 0.1), (self.value, 1.0), (self.gate, 0.1)):
            nn.init.orthogonal_(linear.weight, gain=gain)
        self.output.weight.zero_()
        self.ln_x_weight.fill_(((1 + self.layer_id) / L) ** 0.7)
        self.ln_x_bias.zero_()

    def _mix(self, x: torch.Tensor, x_prev: torch.Tensor):
        """Everything before the recurrence, for ``[B, T, C]`` or ``[B, C]``: per-head r, k, v, the fp32
        per-channel log decay ``-exp(w)``, and the gate ``silu(W_g xg)``."""
        c = self.config
        lead = x.shape[:-1]
        dx = x_prev - x
        hidden = torch.tanh(self.mix_down(x + dx * self.maa_x.to(x.dtype)))
        hidden = hidden.reshape(*lead, len(MIX_ORDER), c.mix_lora).unbind(-2)
        xw, xk, xv, xr, xg = (
            x + dx * (mu.to(x.dtype) + up(h))
            for mu, up, h in zip(self.maa_5C, self.mix_up, hidden, strict=True)
        )
        w = self.time_decay.float() + self.decay_up(torch.tanh(self.decay_down(xw))).float()

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(*lead, c.n_heads, c.head_dim)

        r, k, v = heads(self.receptance(xr)), heads(self.key(xk)), heads(self.value(xv))
        return r, k, v, heads(-w.exp()), F.silu(self.gate(xg))

    def _out(self, o_xHN: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Per-head GroupNorm (fp32, eps 64e-5, affine), times the gate, W_o."""
        o32 = o_xHN.float()
        mean = o32.mean(-1, keepdim=True)
        var = o32.var(-1, unbiased=False, keepdim=True)
        normed = ((o32 - mean) * torch.rsqrt(var + GROUP_NORM_EPS)).flatten(-2)
        normed = normed * self.ln_x_weight.float() + self.ln_x_bias.float()
        return self.output((normed * g.float()).to(g.dtype))

    def forward(self, x_BTC: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTC)[0]

    def prefill(self, x_BTC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and the chunked kernel's final ``[N, N]`` state per head."""
        r, k, v, w, g = self._mix(x_BTC, _token_shift(x_BTC))
        o_BTHN, S_BHNN = dispatch.get("chunk_gla", r.device)(
            r, k, v, w, u_HK=self.time_faaaa, chunk_size=self.config.chunk_size
        )
        return self._out(o_BTHN, g), S_BHNN

    def step(self, x_BC: torch.Tensor, x_prev_BC: torch.Tensor, S_BHNN: torch.Tensor):
        r, k, v, w, g = self._mix(x_BC, x_prev_BC.to(x_BC.dtype))
        o_BHN, S_BHNN = gla_step(r, k, v, w, S_BHNN, u_HK=self.time_faaaa)
        return self._out(o_BHN, g), S_BHNN


class ChannelMix(nn.Module):
    """``sigmoid(W_r xr) * W_v relu(W_k xk)^2`` with token-shifted inputs (official x060)."""

    def __init__(self, config: RWKV6Config, layer_id: int) -> None:
        super().__init__()
        self.config, self.layer_id = config, layer_id
        C = config.d_model
        self.maa_k = nn.Parameter(torch.empty(C))
        self.maa_r = nn.Parameter(torch.empty(C))
        self.key = nn.Linear(C, config.ffn_hidden, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(config.ffn_hidden, C, bias=False)

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        C = self.config.d_model
        ddd = torch.arange(C, device=self.maa_k.device, dtype=torch.float32) / C
        mix = 1.0 - ddd ** (1.0 - self.layer_id / self.config.n_layers)
        self.maa_k.copy_(mix)
        self.maa_r.copy_(mix)
        nn.init.orthogonal_(self.key.weight, gain=1.0)
        self.receptance.weight.zero_()
        self.value.weight.zero_()

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        dx = x_prev - x
        k = torch.relu(self.key(x + dx * self.maa_k.to(x.dtype))).square()
        return torch.sigmoid(self.receptance(x + dx * self.maa_r.to(x.dtype))) * self.value(k)


class RWKV6Block(nn.Module):
    """``x + tmix(norm(x))``, ``x + cmix(norm(x))``; decoding keeps both token shifts' last input."""

    def __init__(self, config: RWKV6Config, layer_id: int) -> None:
        super().__init__()
        self.config = config
        self.tmix_norm, self.tmix = RMSNorm(config.d_model, config.norm_eps), TimeMix(config, layer_id)
        self.cmix_norm, self.cmix = RMSNorm(config.d_model, config.norm_eps), ChannelMix(config, layer_id)

    def forward(self, x_BTC: torch.Tensor) -> torch.Tensor:
        x_BTC = x_BTC + self.tmix(self.tmix_norm(x_BTC))
        h_BTC = self.cmix_norm(x_BTC)
        return x_BTC + self.cmix(h_BTC, _token_shift(h_BTC))

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        return {
            "tmix_prev_BC": torch.zeros(batch, c.d_model, device=device, dtype=dtype),
            "cmix_prev_BC": torch.zeros(batch, c.d_model, device=device, dtype=dtype),
            "S_BHNN": torch.zeros(
                batch, c.n_heads, c.head_dim, c.head_dim, device=device, dtype=torch.float32
            ),
        }

    def prefill(self, x_BTC: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` and the state after it: the kernel's state and both token shifts' last inputs
        (``state``, from ``init_state``, gives their dtype)."""
        h_BTC = self.tmix_norm(x_BTC)
        dx_BTC, S_BHNN = self.tmix.prefill(h_BTC)
        x_BTC = x_BTC + dx_BTC
        g_BTC = self.cmix_norm(x_BTC)
        dtype = state["tmix_prev_BC"].dtype
        after = {
            # copies: a view would keep the whole [B, T, C] activations in the state
            "tmix_prev_BC": h_BTC[:, -1].to(dtype, copy=True),
            "cmix_prev_BC": g_BTC[:, -1].to(dtype, copy=True),
            "S_BHNN": S_BHNN,
        }
        return x_BTC + self.cmix(g_BTC, _token_shift(g_BTC)), after

    def step(self, x_BC: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        h_BC = self.tmix_norm(x_BC)
        dx_BC, state["S_BHNN"] = self.tmix.step(h_BC, state["tmix_prev_BC"], state["S_BHNN"])
        state["tmix_prev_BC"] = h_BC
        x_BC = x_BC + dx_BC
        h_BC = self.cmix_norm(x_BC)
        x_BC = x_BC + self.cmix(h_BC, state["cmix_prev_BC"].to(h_BC.dtype))
        state["cmix_prev_BC"] = h_BC
        return x_BC, state

    def matmul_params(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def state_size(self, seq_len: int) -> int:
        """The ``[N, N]`` state of every head plus the two token shifts' previous inputs."""
        c = self.config
        return c.n_heads * c.head_dim * c.head_dim + 2 * c.d_model

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The chunked kernel's matmuls with the bonus (``kernels.gla``); flat in seq_len."""
        c = self.config
        N = c.head_dim
        return c.n_heads * chunk_gla_flops_per_token(N, N, chunk_size=c.chunk_size, bonus=True)


def build_rwkv6(config: RWKV6Config) -> LanguageModel:
    return LanguageModel(config, [RWKV6Block(config, i) for i in range(config.n_layers)])


# -- sizing ---------------------------------------------------------------------------------------------


def rwkv6_lora_ranks(d_model: int) -> tuple[int, int]:
    """(mix, decay) LoRA ranks: the official 32 and 64 from d 512 (64 and 128 from 4096, as the larger
    official models); below 512 scaled with the width, d/16 and d/8 (multiples of 4, at least 4 and 8)."""
    if d_model >= 4096:
        return 64, 128
    if d_model >= 512:
        return 32, 64
    return max(4, 4 * round(d_model / 64)), max(8, 4 * round(d_model / 32))


def size_rwkv6(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> RWKV6Config:
    """``search_shape`` with the official shape rules (head 64 from d 512, ffn 3.5 d); below ~1M the
    channel-mix width moves within [2d, 5d] to land within 5%."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> RWKV6Config:
        mix_lora, decay_lora = rwkv6_lora_ranks(d_model)
        step = 32 if d_model >= 512 else 8
        values = {
            "head_dim": default_head_dim(d_model),
            "ffn_hidden": step * max(1, math.floor(3.5 * d_model / step)),
            "mix_lora": mix_lora,
            "decay_lora": decay_lora,
            **fixed,
        }
        return RWKV6Config(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    def ffn_range(config: RWKV6Config) -> range:
        step = 8 if config.d_model >= 64 else 4
        return range(2 * config.d_model, 5 * config.d_model + 1, step)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=ffn_range)


ARCHITECTURE = Architecture(
    name="rwkv6",
    config_class=RWKV6Config,
    build=build_rwkv6,
    size_config=size_rwkv6,
    description="RWKV-6 Finch: ddlerp token shift, data-dependent per-channel decay exp(-exp(w)), bonus u, "
    "GroupNorm + SiLU gate; squared-ReLU channel mix",
    paper="Peng et al. 2024, Eagle and Finch: RWKV with Matrix-Valued States and Dynamic Recurrence (arXiv:2404.05892)",
)
