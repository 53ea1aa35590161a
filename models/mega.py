"""Mega (Ma et al. 2023, "Mega: Moving Average Equipped Gated Attention"), the chunked variant: a damped
multi-dimensional EMA feeds a single-head gated attention that works within chunks, with a highway
(update-gate) residual, followed by a normalised feed-forward network.

Per layer, with ``x`` the block input and ``n(x)`` its RMSNorm (pre-norm)::

    EMA (per channel d, expansion h = ema_dim, fp32, decays in log space):
        s_t[d, j] = q[d, j] * s_{t-1}[d, j] + p[d, j] * beta[d, j] * n(x)_t[d]
        p = sigmoid(alpha), delta = sigmoid(delta'), q = 1 - p * delta            (damping)
        x'_t[d] = silu(sum_j gamma[d, j] s_t[d, j] / sqrt(h) + omega[d] n(x)_t[d])
    v = silu(W_v n(x))                                                            [V = v_dim]
    u, z, r, h_x = sigmoid(.), silu(.), silu(.), (.) of W_mx x'                   [D, Z, V, D]
    q, k = z * gamma_q + beta_q, z * gamma_k + beta_k                             (one shared z)
    o = chunk attention: softmax(q k^T / sqrt(Z) + rel_bias[i - j]) v within chunks of ``chunk_size``
    h = silu(h_x + W_h (o * r))
    y = x + u * (h - x)                                                           (highway update)
    out = y + W_2 silu(W_1 n(y))                                                  (normalised FFN)

The EMA runs through ``kernels.linear_scan`` (the real damped EMA is the diagonal recurrence above with
a time-invariant decay ``q``), not fairseq's FFT convolution with the EMA kernel: the same op as decoding,
no complex/FFT numerics, and ``O(T)`` rather than ``O(T log T)``; the price is a ``[B, T, D * h]`` fp32
state tensor. Attention runs through ``kernels.local_attention.chunk_attention``; decoding keeps the
current chunk's keys and values (at most ``chunk_size``) and the EMA state (``D * h``).

Shape suffixes: B batch, T time, D d_model, N = D * ema_dim EMA channels, Z z_dim, V v_dim, C chunk.
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
from kernels.local_attention import chunk_attention
from models.blocks import RMSNorm, swiglu_trim_range
from models.lm import LanguageModel, ModelConfig
from models.registry import Architecture
from models.sizing import size_by_search

PAPER_CHUNK = 1024


@dataclass(frozen=True, kw_only=True)
class MegaConfig(ModelConfig):
    z_dim: int  # shared query/key dimension (paper: 128-256, ~d/4)
    v_dim: int  # value / attention-output dimension (paper "hidden dim": 2 d)
    ffn_hidden: int  # normalised FFN hidden width (paper: 2 d)
    ema_dim: int = 16  # EMA expansion h per channel (paper: 16)
    chunk_size: int = PAPER_CHUNK  # attention span: queries attend within their chunk
    scan_chunk_size: int = 64  # kernels.linear_scan chunk (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("z_dim", "v_dim", "ffn_hidden", "ema_dim", "chunk_size", "scan_chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MegaConfig.{name} must be a positive int, got {value!r}")

    def layer_params(self) -> int:
        """EMA (alpha, delta, beta, gamma: D x h; omega: D), W_v, W_mx, W_h, q/k scale and offset (4 Z),
        the relative-position bias (chunk_size), the FFN and two RMSNorms."""
        D, Z, V, h = self.d_model, self.z_dim, self.v_dim, self.ema_dim
        ema = 4 * D * h + D
        gated_attention = D * V + D * (2 * D + Z + V) + V * D + 4 * Z + self.chunk_size
        return ema + gated_attention + 2 * D * self.ffn_hidden + 2 * D

    def non_embedding_params(self) -> int:
        return self.n_layers * self.layer_params() + self.d_model


class DampedEMA(nn.Module):
    """Mega's multi-dimensional damped EMA: ``D * ema_dim`` real diagonal recurrences, read out to D."""

    def __init__(self, config: MegaConfig) -> None:
        super().__init__()
        self.config = config
        D, h = config.d_model, config.ema_dim
        self.alpha = nn.Parameter(torch.empty(D, h))  # p = sigmoid(alpha): input weight
        self.delta = nn.Parameter(torch.empty(D, h))  # sigmoid(delta): damping
        self.beta = nn.Parameter(torch.empty(D, h))  # expansion
        self.gamma = nn.Parameter(torch.empty(D, h))  # projection back to D
        self.omega = nn.Parameter(torch.empty(D))  # residual weight
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """fairseq's MultiHeadEMA init: alpha, delta ~ N(0, 0.2); beta ~ N(0, 0.02) + (1, -1, 1, ...);
        gamma, omega ~ N(0, 1)."""
        nn.init.normal_(self.alpha, 0.0, 0.2)
        nn.init.normal_(self.delta, 0.0, 0.2)
        signs = torch.ones(self.config.ema_dim)
        signs[1::2] = -1.0
        self.beta.normal_(0.0, 0.02).add_(signs)
        nn.init.normal_(self.gamma, 0.0, 1.0)
        nn.init.normal_(self.omega, 0.0, 1.0)

    def _coefficients(self):
        """``log q`` and ``p * beta``, both ``[D * h]`` fp32 (q = 1 - p * delta in (0, 1))."""
        p = torch.sigmoid(self.alpha.float())
        log_q = torch.log1p(-p * torch.sigmoid(self.delta.float()))
        return log_q.flatten(), (p * self.beta.float()).flatten()

    def _readout(self, s_xN: torch.Tensor, x_xD: torch.Tensor) -> torch.Tensor:
        scale = self.config.ema_dim**-0.5
        y_xD = torch.einsum(
            "...dh,dh->...d", s_xN.unflatten(-1, (self.config.d_model, -1)), self.gamma.float()
        )
        return F.silu(y_xD * scale + self.omega.float() * x_xD.float())

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTD)[0]

    def prefill(self, x_BTD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and the last EMA state ``s_BN`` (fp32), the decode state after ``x_BTD``."""
        log_q_N, weight_N = self._coefficients()
        b_BTN = (x_BTD.float()[..., None] * weight_N.view(x_BTD.shape[-1], -1)).flatten(-2)
        s_BTN, s_BN = dispatch.get("linear_scan", b_BTN.device)(
            log_q_N.view(1, 1, -1), b_BTN, chunk_size=self.config.scan_chunk_size
        )
        return self._readout(s_BTN, x_BTD).to(x_BTD.dtype), s_BN

    def step(self, x_BD: torch.Tensor, s_BN: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_q_N, weight_N = self._coefficients()
        b_BN = (x_BD.float()[..., None] * weight_N.view(x_BD.shape[-1], -1)).flatten(-2)
        s_BN = linear_scan_step(log_q_N.expand_as(b_BN), b_BN, s_BN)
        return self._readout(s_BN, x_BD).to(x_BD.dtype), s_BN


class MegaBlock(nn.Module):
    """One Mega layer: moving-average gated attention (highway residual) + normalised FFN."""

    def __init__(self, config: MegaConfig) -> None:
        super().__init__()
        self.config = config
        D, Z, V = config.d_model, config.z_dim, config.v_dim
        self.mixer_norm = RMSNorm(D, config.norm_eps)
        self.ema = DampedEMA(config)
        self.v_proj = nn.Linear(D, V, bias=False)
        self.mx_proj = nn.Linear(D, D + Z + V + D, bias=False)  # -> u, z, r, h_x
        self.h_proj = nn.Linear(V, D, bias=False)
        self.qk_scale = nn.Parameter(torch.empty(2, Z))  # gamma_q, gamma_k
        self.qk_offset = nn.Parameter(torch.empty(2, Z))  # beta_q, beta_k
        self.rel_bias = nn.Parameter(torch.empty(config.chunk_size))  # bias for offsets i - j = 0..C-1
        self.mlp_norm = RMSNorm(D, config.norm_eps)
        self.fc1 = nn.Linear(D, config.ffn_hidden, bias=False)
        self.fc2 = nn.Linear(config.ffn_hidden, D, bias=False)
        self.fc2.is_residual_output = True
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """fairseq: q/k scales and the relative-position bias ~ N(0, 0.02), offsets 0."""
        nn.init.normal_(self.qk_scale, 0.0, 0.02)
        nn.init.zeros_(self.qk_offset)
        nn.init.normal_(self.rel_bias, 0.0, 0.02)

    def _gates(self, x_xD: torch.Tensor, mx_xD: torch.Tensor):
        """v, u, q, k, r, h_x from the normed input and the EMA output."""
        D, Z, V = self.config.d_model, self.config.z_dim, self.config.v_dim
        v = F.silu(self.v_proj(x_xD))
        u, zr, h_x = torch.split(self.mx_proj(mx_xD), [D, Z + V, D], dim=-1)
        z, r = torch.split(F.silu(zr), [Z, V], dim=-1)
        q = z * self.qk_scale[0].to(z.dtype) + self.qk_offset[0].to(z.dtype)
        k = z * self.qk_scale[1].to(z.dtype) + self.qk_offset[1].to(z.dtype)
        return v, torch.sigmoid(u), q, k, r, h_x

    def _finish(self, x, o, u, r, h_x):
        """Highway update and the normalised FFN."""
        h = F.silu(h_x + self.h_proj(o.to(r.dtype) * r))
        y = x + u * (h - x)
        return y + self.fc2(F.silu(self.fc1(self.mlp_norm(y))))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self._mix(x_BTD)[0]

    def _mix(self, x_BTD: torch.Tensor):
        """The training form's output and what decoding needs after it: the last EMA state and the
        keys and values of every position."""
        normed_BTD = self.mixer_norm(x_BTD)
        mx_BTD, ema_BN = self.ema.prefill(normed_BTD)
        v, u, q, k, r, h_x = self._gates(normed_BTD, mx_BTD)
        o_B1TV, _ = chunk_attention(
            q[:, None], k[:, None], v[:, None],
            chunk=self.config.chunk_size, scale=self.config.z_dim**-0.5, rel_bias=self.rel_bias,
        )  # fmt: skip
        return self._finish(x_BTD, o_B1TV[:, 0], u, r, h_x), ema_BN, k, v

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` and the decode state after it: the EMA state and, in slot ``position % chunk_size``,
        the keys and values of the last ``chunk_size`` positions (what ``step`` would leave there; it
        reads only the current chunk's slots)."""
        T, C = x_BTD.shape[1], self.config.chunk_size
        y_BTD, ema_BN, k_BTZ, v_BTV = self._mix(x_BTD)
        kept = min(T, C)
        slots_S = torch.arange(T - kept, T, device=x_BTD.device) % C
        after = {"ema_BN": ema_BN.to(state["ema_BN"].dtype)}
        for name, values in (("k_BCZ", k_BTZ), ("v_BCV", v_BTV)):
            after[name] = torch.zeros_like(state[name])
            after[name][:, slots_S] = values[:, T - kept :].to(after[name].dtype)
        return y_BTD, after

    # -- decoding: the EMA state and the current chunk's keys and values ---------------------------------

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        C = self.config.chunk_size
        return {
            "ema_BN": torch.zeros(batch, self.config.d_model * self.config.ema_dim, device=device),
            "k_BCZ": torch.zeros(batch, C, self.config.z_dim, device=device, dtype=dtype),
            "v_BCV": torch.zeros(batch, C, self.config.v_dim, device=device, dtype=dtype),
        }

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        normed_BD = self.mixer_norm(x_BD)
        mx_BD, state["ema_BN"] = self.ema.step(normed_BD, state["ema_BN"])
        v, u, q, k, r, h_x = self._gates(normed_BD, mx_BD)
        i = pos % self.config.chunk_size  # a new chunk starts at i == 0 and forgets the previous one
        state["k_BCZ"][:, i] = k.to(state["k_BCZ"].dtype)
        state["v_BCV"][:, i] = v.to(state["v_BCV"].dtype)
        scores_BS = torch.einsum("bz,bsz->bs", q.float(), state["k_BCZ"][:, : i + 1].float())
        scores_BS = scores_BS * self.config.z_dim**-0.5 + self.rel_bias[: i + 1].flip(0).float()
        o_BV = torch.einsum(
            "bs,bsv->bv", torch.softmax(scores_BS, dim=-1), state["v_BCV"][:, : i + 1].float()
        )
        return self._finish(x_BD, o_BV, u, r, h_x), state

    # -- accounting -------------------------------------------------------------------------------------------

    def matmul_params(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def state_size(self, seq_len: int) -> int:
        """EMA state (D * h) and the current chunk's keys and values (at most chunk_size tokens)."""
        c = self.config
        return c.d_model * c.ema_dim + min(seq_len, c.chunk_size) * (c.z_dim + c.v_dim)

    def extra_flops_per_token(self, seq_len: int) -> int:
        """Attention: (min(T, C) + 1) / 2 keys per query on average (exact when T is a multiple of C),
        2 Z flops per score and 2 V per weighted value; the EMA: 3 per state channel (decay multiply,
        input multiply-add) and 2 per channel for the gamma read-out."""
        c = self.config
        attention = 2 * (c.z_dim + c.v_dim) * (min(seq_len, c.chunk_size) + 1)
        return attention + 5 * c.d_model * c.ema_dim


def build_mega(config: MegaConfig) -> LanguageModel:
    return LanguageModel(config, [MegaBlock(config) for _ in range(config.n_layers)])


def size_mega(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> MegaConfig:
    """From the width, as fairseq's mega_lm presets: z_dim = d/4 (at least 8), v_dim = ffn_hidden = 2d,
    ema_dim 16; chunk ``min(1024, seq_len // 2)`` (like Griffin's window: attention stays local)."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> MegaConfig:
        seq_len = fixed.get("seq_len", MegaConfig.seq_len)
        values = {
            "z_dim": max(8, d_model // 4),
            "v_dim": 2 * d_model,
            "ffn_hidden": 2 * d_model,
            "chunk_size": max(1, min(PAPER_CHUNK, seq_len // 2)),
            **fixed,
        }
        return MegaConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    # Below ~1M the FFN moves within [2d, 4d] (the Transformer's MLP range) to land within 5%.
    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=swiglu_trim_range)


ARCHITECTURE = Architecture(
    name="mega",
    config_class=MegaConfig,
    build=build_mega,
    size_config=size_mega,
    description="Mega-chunk: damped multi-dimensional EMA + single-head gated chunk attention, highway residual, NFFN",
    paper="Ma et al. 2023, Mega: Moving Average Equipped Gated Attention (arXiv:2209.10655), ICLR 2023",
)
