"""Mamba (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"): a stack of
Mamba blocks (no MLP), each a gated selective state space model, as in state-spaces/mamba
``mamba_ssm/modules/mamba_simple.py``.

Per layer, with ``x`` the RMS-normed block input (pre-norm; residual ``x + mixer(n(x))``)::

    x', z = W_in x                                  [E each, E = expand * d_model = 2 d]
    x' = silu(conv1d_4(x'))                         short causal depthwise conv (width 4, with bias)
    dt_r, B, C = W_x x'                             [R = ceil(d / 16), N, N]: input-dependent dt, B, C
    dt = softplus(W_dt dt_r + b_dt)                 [E], the step size per channel
    A = -exp(A_log)                                 [E, N], S4D-real init A = -(1, 2, ..., N)
    h_t = exp(dt_t A) h_{t-1} + dt_t B_t x'_t       selective scan, state [E, N] fp32
    y_t = C_t . h_t + D x'_t
    out = W_out (y * silu(z))

``b_dt`` starts at softplus^-1 of dt ~ log-uniform [1e-3, 0.1] (floored at 1e-4) and ``W_dt`` at
U(+-R^-1/2); ``D`` at 1. Training runs ``kernels.selective_scan.selective_scan`` (chunked, memory
``[B, segment, E, N]``); decoding its one-token step. About twice the layers of a same-size Transformer:
a Mamba block has ~6 d^2 parameters against the Transformer layer's 12 d^2.

Shape suffixes: B batch, T time, D d_model, E d_inner, N d_state, R dt_rank, K conv width.
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
from kernels.selective_scan import selective_scan_step
from models.blocks import CausalConv1d, last_inputs
from models.lm import LanguageModel, ModelConfig, ResidualBlock
from models.registry import Architecture
from models.sizing import size_by_search

# Mamba's presets have twice the GPT-3 depth at the same width (130M: 24 x 768 vs 12 x 768; 1.4B:
# 48 x 2048 vs 24 x 2048): half the Transformer's preferred aspect ratio d_model / n_layers (48).
MAMBA_ASPECT_RATIO = 24.0


@dataclass(frozen=True, kw_only=True)
class MambaConfig(ModelConfig):
    d_inner: int  # E = expand * d_model (paper: expand 2)
    dt_rank: int  # R = ceil(d_model / 16)
    d_state: int = 16  # N
    conv_width: int = 4  # K
    dt_min: float = 1e-3  # dt starts log-uniform in [dt_min, dt_max]
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    scan_chunk_size: int = 32  # kernels.selective_scan chunk (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for field_name in ("d_inner", "dt_rank", "d_state", "conv_width", "scan_chunk_size"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field_name} must be a positive int, got {value!r}")
        if not 0.0 < self.dt_min <= self.dt_max:
            raise ValueError(f"{name} needs 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")

    def mixer_params(self) -> int:
        """W_in (D x 2E), conv (K E + E), W_x (E x (R + 2N)), W_dt (R E + E), A_log (E N), D (E), W_out."""
        D, E, R, N, K = self.d_model, self.d_inner, self.dt_rank, self.d_state, self.conv_width
        return 2 * D * E + (K * E + E) + E * (R + 2 * N) + (R * E + E) + E * N + E + E * D

    def non_embedding_params(self) -> int:
        """Exact: per layer a Mamba mixer and its RMSNorm; plus the final norm."""
        return self.n_layers * (self.mixer_params() + self.d_model) + self.d_model


class MambaConv1d(CausalConv1d):
    """The depthwise causal conv with PyTorch's default ``Conv1d`` init, which Mamba keeps:
    weight and bias ~ U(+-1/sqrt(K)) (fan-in K for a depthwise kernel)."""

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.kernel)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)


class MambaMixer(nn.Module):
    """The Mamba block's mixer: ``W_out(SSM(silu(conv(W_in x))) * silu(z))``."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.config = config
        D, E, R, N = config.d_model, config.d_inner, config.dt_rank, config.d_state
        self.in_proj = nn.Linear(D, 2 * E, bias=False)
        self.conv = MambaConv1d(E, config.conv_width)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.empty(E, N))
        self.D = nn.Parameter(torch.empty(E))
        self.out_proj = nn.Linear(E, D, bias=False)
        self.out_proj.is_residual_output = True
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """Mamba's SSM init (after the generic N(0, 0.02) pass, which would zero the dt bias)."""
        config = self.config
        bound = config.dt_rank**-0.5  # dt_init "random", dt_scale 1: preserves dt's variance
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        log_min, log_max = math.log(config.dt_min), math.log(config.dt_max)
        dt = torch.exp(torch.rand(config.d_inner, dtype=torch.float64) * (log_max - log_min) + log_min)
        dt = dt.clamp(min=config.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        # S4D-real: A[e, n] = -(n + 1) for every channel
        self.A_log.copy_(
            torch.log(torch.arange(1, config.d_state + 1, dtype=torch.float32)).repeat(config.d_inner, 1)
        )
        nn.init.ones_(self.D)

    def _ssm_inputs(self, x_xE: torch.Tensor):
        """``dt`` (fp32, after softplus), ``B``, ``C`` from the conv output; and ``A``."""
        R, N = self.config.dt_rank, self.config.d_state
        dt_xR, B_xN, C_xN = self.x_proj(x_xE).split([R, N, N], dim=-1)
        dt_xE = F.softplus(self.dt_proj(dt_xR).float())
        return dt_xE, B_xN.float(), C_xN.float(), -torch.exp(self.A_log.float())

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.prefill(x_BTD, None)[0]

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor] | None):
        """``forward`` and the decode state after it: the conv's last ``K - 1`` inputs (fp32, as ``step``
        keeps them) and the scan's last state."""
        u_BTE, z_BTE = self.in_proj(x_BTD).chunk(2, dim=-1)
        x_BTE = F.silu(self.conv(u_BTE))
        dt_BTE, B_BTN, C_BTN, A_EN = self._ssm_inputs(x_BTE)
        y_BTE, h_BEN = dispatch.get("selective_scan", x_BTE.device)(
            x_BTE.float(), dt_BTE, A_EN, B_BTN, C_BTN, self.D.float(), chunk_size=self.config.scan_chunk_size
        )
        conv_BKE = last_inputs(u_BTE, self.config.conv_width - 1).float()
        y_BTD = self.out_proj((y_BTE * F.silu(z_BTE.float())).to(x_BTD.dtype))
        return y_BTD, {"conv_BKE": conv_BKE, "h_BEN": h_BEN}

    # -- decoding -------------------------------------------------------------------------------------

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        E, N, K = self.config.d_inner, self.config.d_state, self.config.conv_width
        return {
            "conv_BKE": torch.zeros(batch, K - 1, E, device=device, dtype=torch.float32),
            "h_BEN": torch.zeros(batch, E, N, device=device, dtype=torch.float32),
        }

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        x_BE, z_BE = self.in_proj(x_BD).chunk(2, dim=-1)
        x_BE, state["conv_BKE"] = self.conv.step(x_BE, state["conv_BKE"])
        x_BE = F.silu(x_BE)
        dt_BE, B_BN, C_BN, A_EN = self._ssm_inputs(x_BE)
        y_BE, state["h_BEN"] = selective_scan_step(x_BE, dt_BE, A_EN, B_BN, C_BN, self.D, state["h_BEN"])
        return self.out_proj((y_BE * F.silu(z_BE.float())).to(x_BD.dtype)), state

    # -- accounting -----------------------------------------------------------------------------------

    def state_size(self, seq_len: int) -> int:
        """The SSM state (E N) and the conv's last K - 1 inputs; independent of seq_len."""
        E = self.config.d_inner
        return E * self.config.d_state + (self.config.conv_width - 1) * E

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The conv (2 K E), the selective scan 9 E N + E (D skip) + E (z gate): the estimate of
        state-spaces/mamba issue #110 (VMamba's ``flops_selective_scan_fn``)."""
        E = self.config.d_inner
        return 2 * self.config.conv_width * E + 9 * E * self.config.d_state + 2 * E


class MambaLanguageModel(LanguageModel):
    """``LanguageModel`` whose ``A_log`` matrices skip weight decay, as Mamba's ``_no_weight_decay``."""

    def optimizer_param_overrides(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        no_decay = [p for name, p in self.named_parameters() if name.endswith("A_log") and p.requires_grad]
        taken = {id(p) for p in no_decay}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in taken]} for g in groups]
        return [*groups, {"params": no_decay, "weight_decay": 0.0}]


def build_mamba(config: MambaConfig) -> MambaLanguageModel:
    blocks = [
        ResidualBlock(config.d_model, MambaMixer(config), None, config.norm_eps)
        for _ in range(config.n_layers)
    ]
    return MambaLanguageModel(config, blocks)


# -- sizing ------------------------------------------------------------------------------------------------


def size_mamba(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> MambaConfig:
    """``sizing.search_shape`` over (n_layers, d_model) at aspect ratio 24 (twice the Transformer's depth),
    with Mamba's rules from the width: d_inner = 2 d (expand 2), dt_rank = ceil(d / 16), d_state 16.
    Fixed ``n_layers`` / ``d_model`` overrides restrict the search; others are held. No trim: no MLP."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> MambaConfig:
        values = {"d_inner": 2 * d_model, "dt_rank": math.ceil(d_model / 16), **fixed}
        return MambaConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    return size_by_search(target, overrides, derive, aspect_ratio=MAMBA_ASPECT_RATIO)


ARCHITECTURE = Architecture(
    name="mamba",
    config_class=MambaConfig,
    build=build_mamba,
    size_config=size_mamba,
    description="Mamba: selective SSM blocks (in-proj, conv4, input-dependent dt/B/C scan, silu(z) gate), no MLP",
    paper="Gu & Dao 2023, Mamba: Linear-Time Sequence Modeling with Selective State Spaces (arXiv:2312.00752)",
)
