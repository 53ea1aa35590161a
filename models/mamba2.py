"""Mamba-2 (Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality", arXiv:2405.21060), following state-spaces/mamba ``Mamba2``.

Per layer (inner width ``E = 2 d``, heads of ``P = 64`` channels, state size ``N``, one group of B/C)::

    z, xBC, dt = W_in x                                   xBC = [x (E), B (N), C (N)]
    x, B, C    = silu(conv1d_4(xBC))                       short causal depthwise conv, with bias
    dt_t       = softplus(dt_t + dt_bias)                  per head
    a_t        = exp(dt_t * A),  A = -exp(A_log)           scalar decay per head (log decay dt * A)
    h_t        = a_t h_{t-1} + B_t (dt_t x_t)^T            state [N, P] per head
    y_t        = h_t^T C_t + D x_t
    out        = W_out RMSNorm(y * silu(z))                gated RMSNorm (norm after the gate)

The SSD is ``kernels.gla.chunk_gla`` with one decay per head: ``C`` as queries, ``B`` as keys, ``x * dt``
as values, log decay ``dt * A``. Blocks are Mamba's ``x + mixer(norm(x))`` with no MLP, so at a given
width a layer holds about half a Transformer layer's weights and the model has about twice the layers
(sizing aims at d_model / n_layers = 24 instead of 48). Shape suffixes: B batch, T time, D d_model,
E inner width, H heads, P head dim, N state size, X conv channels, W conv window.
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
from models.lm import LanguageModel, ModelConfig, ResidualBlock, check_positive_ints
from models.registry import Architecture
from models.sizing import ASPECT_RATIO, size_by_search


@dataclass(frozen=True, kw_only=True)
class Mamba2Config(ModelConfig):
    d_inner: int  # expand * d_model, expand = 2
    head_dim: int  # P: 64 in the paper
    d_state: int  # N: 128 in the paper
    conv_size: int = 4
    chunk_size: int = 64  # chunk length of the training kernel (no effect on the maths)
    dt_min: float = 1e-3  # dt initialised log-uniform in [dt_min, dt_max] (floor dt_init_floor)
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    A_init_min: float = 1.0  # A = exp(A_log) initialised uniform in [A_init_min, A_init_max]
    A_init_max: float = 16.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(self, ("d_inner", "head_dim", "d_state", "conv_size", "chunk_size"))
        if self.d_inner % self.head_dim:
            raise ValueError(f"Mamba2Config.head_dim={self.head_dim} must divide d_inner={self.d_inner}")
        if not 0 < self.dt_min <= self.dt_max or not 0 < self.A_init_min <= self.A_init_max:
            raise ValueError("Mamba2Config: need 0 < dt_min <= dt_max and 0 < A_init_min <= A_init_max")

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.head_dim

    @property
    def conv_channels(self) -> int:
        return self.d_inner + 2 * self.d_state

    def non_embedding_params(self) -> int:
        """Exact count: per layer W_in (z, x, B, C, dt), the conv (weights and bias), dt_bias, A_log, D,
        the gated norm's gain, W_out and the block norm; plus the final norm."""
        d, E, H, X = self.d_model, self.d_inner, self.n_heads, self.conv_channels
        mixer = d * (2 * E + 2 * self.d_state + H) + (self.conv_size + 1) * X + 3 * H + E + E * d
        return self.n_layers * (mixer + d) + d


class Mamba2Mixer(nn.Module):
    """The Mamba-2 token mixer (one layer)."""

    def __init__(self, config: Mamba2Config) -> None:
        super().__init__()
        c = self.config = config
        self.split_sizes = [c.d_inner, c.conv_channels, c.n_heads]  # z, xBC, dt
        self.in_proj = nn.Linear(c.d_model, sum(self.split_sizes), bias=False)
        self.conv_weight = nn.Parameter(torch.empty(c.conv_channels, 1, c.conv_size))
        self.conv_bias = nn.Parameter(torch.empty(c.conv_channels))
        self.dt_bias = nn.Parameter(torch.empty(c.n_heads))
        self.A_log = nn.Parameter(torch.empty(c.n_heads))
        self.D = nn.Parameter(torch.empty(c.n_heads))
        self.norm_weight = nn.Parameter(torch.empty(c.d_inner))
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=False)
        self.out_proj.is_residual_output = True

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """state-spaces/mamba ``Mamba2.__init__``: conv as PyTorch's default (U(+-1/sqrt(conv_size)) for
        weights and bias); dt = softplus(dt_bias) log-uniform in [1e-3, 0.1] (floor 1e-4), stored as its
        inverse softplus; A ~ U(1, 16) stored as log; D = 1; norm gain 1."""
        c = self.config
        bound = 1.0 / math.sqrt(c.conv_size)
        self.conv_weight.uniform_(-bound, bound)
        self.conv_bias.uniform_(-bound, bound)
        log_min, log_max = math.log(c.dt_min), math.log(c.dt_max)
        dt = (torch.rand_like(self.dt_bias) * (log_max - log_min) + log_min).exp().clamp(min=c.dt_init_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.A_log.copy_(torch.empty_like(self.A_log).uniform_(c.A_init_min, c.A_init_max).log())
        self.D.fill_(1.0)
        self.norm_weight.fill_(1.0)

    def _ssd_inputs(self, xBC: torch.Tensor, dt: torch.Tensor):
        """After the conv: queries C, keys B (shared by the heads), values x * dt, log decay dt * A, and x."""
        c = self.config
        lead = xBC.shape[:-1]
        x, B, C = F.silu(xBC).split([c.d_inner, c.d_state, c.d_state], dim=-1)
        x_xHP = x.reshape(*lead, c.n_heads, c.head_dim)
        dt_xH = F.softplus(dt.float() + self.dt_bias.float())
        g_xH = dt_xH * -self.A_log.float().exp()
        B_xHN = B[..., None, :].expand(*lead, c.n_heads, c.d_state)
        C_xHN = C[..., None, :].expand(*lead, c.n_heads, c.d_state)
        return C_xHN, B_xHN, x_xHP.float() * dt_xH[..., None], g_xH, x_xHP

    def _output(self, y_xHP: torch.Tensor, x_xHP: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``y + D x``, then the gated RMSNorm ``norm(y * silu(z)) * weight`` over the inner width (fp32)."""
        y = (y_xHP.float() + self.D.float()[:, None] * x_xHP.float()).flatten(-2)
        y = y * F.silu(z.float())
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.config.norm_eps) * self.norm_weight.float()
        return self.out_proj(y.to(z.dtype))

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTD, None)[0]

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor] | None):
        """``forward`` and the decode state after it: the conv's last inputs and the SSD's final state
        (``state``, from ``init_state``, gives the conv history's dtype; None: the input's)."""
        c = self.config
        T = x_BTD.shape[1]
        z, xBC, dt = self.in_proj(x_BTD).split(self.split_sizes, dim=-1)
        xBC_pad_BXT = F.pad(xBC.transpose(1, 2), (c.conv_size - 1, 0))
        # the decode history, copied: a view would keep the whole [B, X, T] buffer in the state
        conv_BXW = xBC_pad_BXT[..., xBC_pad_BXT.shape[-1] - (c.conv_size - 1) :].clone()
        xBC_BXT = F.conv1d(
            xBC_pad_BXT, self.conv_weight.to(xBC.dtype), self.conv_bias.to(xBC.dtype), groups=c.conv_channels
        )[..., :T]
        q, k, v, g, x = self._ssd_inputs(xBC_BXT.transpose(1, 2), dt)
        y_BTHP, S_BHNP = dispatch.get("chunk_gla", q.device)(q, k, v, g, chunk_size=c.chunk_size)
        dtype = x_BTD.dtype if state is None else state["conv_BXW"].dtype
        return self._output(y_BTHP, x, z), {"conv_BXW": conv_BXW.to(dtype), "S_BHNP": S_BHNP}

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        c = self.config
        return {
            "conv_BXW": torch.zeros(batch, c.conv_channels, c.conv_size - 1, device=device, dtype=dtype),
            "S_BHNP": torch.zeros(
                batch, c.n_heads, c.d_state, c.head_dim, device=device, dtype=torch.float32
            ),
        }

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        z, xBC, dt = self.in_proj(x_BD).split(self.split_sizes, dim=-1)
        window_BXW = torch.cat([state["conv_BXW"], xBC[..., None].to(state["conv_BXW"].dtype)], dim=-1)
        state["conv_BXW"] = window_BXW[..., 1:]
        xBC = (window_BXW * self.conv_weight[:, 0].to(window_BXW.dtype)).sum(-1) + self.conv_bias
        q, k, v, g, x = self._ssd_inputs(xBC.to(x_BD.dtype), dt)
        y_BHP, state["S_BHNP"] = gla_step(q, k, v, g, state["S_BHNP"])
        return self._output(y_BHP, x, z), state

    def state_size(self, seq_len: int) -> int:
        """Per sequence: the ``[N, P]`` SSM state of every head plus the conv's last ``conv_size - 1`` inputs."""
        c = self.config
        return c.n_heads * c.d_state * c.head_dim + (c.conv_size - 1) * c.conv_channels

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The conv (2 * conv_size per channel) and the chunked SSD (``kernels.gla``); flat in seq_len."""
        c = self.config
        ssd = c.n_heads * chunk_gla_flops_per_token(c.d_state, c.head_dim, chunk_size=c.chunk_size)
        return 2 * c.conv_size * c.conv_channels + ssd


def build_mamba2(config: Mamba2Config) -> LanguageModel:
    blocks = [
        ResidualBlock(config.d_model, Mamba2Mixer(config), None, config.norm_eps)
        for _ in range(config.n_layers)
    ]
    return LanguageModel(config, blocks)


# -- sizing ---------------------------------------------------------------------------------------------


def default_mamba2_shape(d_model: int) -> dict[str, int]:
    """expand 2; head dim 64 (the paper) once there are 4 heads, else d_inner / 4; d_state 128 (the paper)
    from d_model 512, d_model / 4 below (at least 16) so B and C stay a small share of W_in."""
    d_inner = 2 * d_model
    head_dim = 64 if d_inner >= 256 else max(1, d_inner // 4)
    return {"d_inner": d_inner, "head_dim": head_dim, "d_state": min(128, max(16, d_model // 4))}


def size_mamba2(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> Mamba2Config:
    """``search_shape`` at aspect ratio 24 (half the Transformer's 48): a Mamba layer has half the weights,
    so a model of the same size has about twice the layers at the same width (Mamba-2 130M: 24 x 768)."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> Mamba2Config:
        values = {**default_mamba2_shape(d_model), **fixed}
        if "d_inner" in fixed and "head_dim" not in fixed and values["d_inner"] % values["head_dim"]:
            values["head_dim"] = math.gcd(values["d_inner"], values["head_dim"])
        return Mamba2Config(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    return size_by_search(target, overrides, derive, aspect_ratio=ASPECT_RATIO / 2)


ARCHITECTURE = Architecture(
    name="mamba2",
    config_class=Mamba2Config,
    build=build_mamba2,
    size_config=size_mamba2,
    description="Mamba-2 SSD: scalar per-head decay exp(dt A), short conv on x/B/C, D skip, gated RMSNorm; "
    "no MLP (about 2x the layers of a Transformer)",
    paper="Dao & Gu 2024, Transformers are SSMs (Mamba-2, arXiv:2405.21060)",
)
