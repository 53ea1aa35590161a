"""S4D (Gu, Gupta, Goel & Re 2022, "On the Parameterization and Initialization of Diagonal State Space
Models"): a diagonal complex SSM per channel, S4D-Lin initialised, discretised by zero-order hold, trained
as a causal FFT convolution, decoded as a recurrence; in the S4 language-model layout (Gu et al. 2022,
S4, WikiText-103: ``s4s4ff``: two SSM blocks and one FFN block per layer, pre-norm, as in
state-spaces/s4 ``configs/experiment/lm/s4-wt103.yaml``).

The S4D block (state-spaces/s4 ``models/s4/s4d.py``), per channel ``h`` of ``H = d_model`` and complex
mode ``m`` of ``M = d_state / 2`` (each stands for a conjugate pair, hence the ``2 Re``)::

    A = -exp(log_A_real) + i A_imag                 S4D-Lin init: A_m = -1/2 + i pi m
    dt = exp(log_dt)                                 log-uniform in [1e-3, 0.1]
    K_l = 2 Re(sum_m C_m (exp(dt A_m) - 1) / A_m exp(dt A_m)^l)     ZOH kernel (B = 1, folded into C)
    y = gelu(K * u + D u)                            causal conv by FFT of length 2T (kernels.fft_conv)
    out = GLU(W_out y) = (W_out y)[:H] * sigmoid((W_out y)[H:])

A layer is ``x + S4D(n(x))`` twice, then ``x + W_2 gelu(W_1 n(x))`` (FFN 4d): 12 d^2 weights, the
Transformer layer's count. ``log_dt``, ``log_A_real``, ``A_imag`` train with their own learning rate
(``ssm_lr``, 1e-3 at most) and no weight decay (``S4DLanguageModel.optimizer_param_overrides``).

Shape suffixes: B batch, T time, D = H d_model, M complex modes, F FFN hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernels.fft_conv import s4d_discretize, s4d_fft, s4d_step
from models.blocks import RMSNorm, swiglu_width_range
from models.lm import LanguageModel, ModelConfig
from models.registry import Architecture
from models.sizing import size_by_search

SSM_PARAMETERS = ("log_dt", "log_A_real", "A_imag")  # own learning rate, no weight decay (S4's _optim)


@dataclass(frozen=True, kw_only=True)
class S4DConfig(ModelConfig):
    ffn_hidden: int  # FFN hidden width (S4 wt103: expand 4)
    d_state: int = 64  # N real state dims per channel = N / 2 complex modes (S4D: 64)
    ssm_per_layer: int = 2  # S4D blocks before each FFN block (S4 wt103 "s4s4ff")
    dt_min: float = 1e-3
    dt_max: float = 0.1
    ssm_lr: float = 1e-3  # learning rate of log_dt, log_A_real, A_imag (capped by the base lr when known)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for field_name in ("ffn_hidden", "d_state", "ssm_per_layer"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field_name} must be a positive int, got {value!r}")
        if self.d_state % 2:
            raise ValueError(f"{name}.d_state must be even (conjugate pairs), got {self.d_state}")
        if not 0.0 < self.dt_min <= self.dt_max:
            raise ValueError(f"{name} needs 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        if not self.ssm_lr > 0:
            raise ValueError(f"{name}.ssm_lr must be > 0, got {self.ssm_lr}")

    @property
    def modes(self) -> int:
        return self.d_state // 2

    def ssm_block_params(self) -> int:
        """log_dt (H), log_A_real, A_imag (H M each), C (2 H M), D (H), W_out (H x 2H), its RMSNorm (H)."""
        H, M = self.d_model, self.modes
        return H + 4 * H * M + H + 2 * H * H + H

    def non_embedding_params(self) -> int:
        """Exact: per layer ``ssm_per_layer`` S4D blocks and an FFN block (2 D F + its norm); final norm."""
        ffn = 2 * self.d_model * self.ffn_hidden + self.d_model
        return self.n_layers * (self.ssm_per_layer * self.ssm_block_params() + ffn) + self.d_model


class S4DMixer(nn.Module):
    """One S4D block's mixer: ``GLU(W_out gelu(SSM(u) + D u))`` over ``H = d_model`` channels."""

    def __init__(self, config: S4DConfig) -> None:
        super().__init__()
        self.config = config
        H, M = config.d_model, config.modes
        self.log_dt = nn.Parameter(torch.empty(H))
        self.log_A_real = nn.Parameter(torch.empty(H, M))
        self.A_imag = nn.Parameter(torch.empty(H, M))
        self.C = nn.Parameter(torch.empty(H, M, 2))  # complex, as (real, imag) pairs
        self.D = nn.Parameter(torch.empty(H))
        self.out_proj = nn.Linear(H, 2 * H, bias=False)
        self.out_proj.is_residual_output = True
        self.init_extra_parameters()

    @torch.no_grad()
    def init_extra_parameters(self) -> None:
        """S4D-Lin: A = -1/2 + i pi m; dt log-uniform [dt_min, dt_max]; C ~ CN(0, 1); D ~ N(0, 1)."""
        config, (H, M) = self.config, self.log_A_real.shape
        log_min, log_max = math.log(config.dt_min), math.log(config.dt_max)
        self.log_dt.copy_(torch.rand(H) * (log_max - log_min) + log_min)
        self.log_A_real.fill_(math.log(0.5))
        self.A_imag.copy_(math.pi * torch.arange(M, dtype=torch.float32).repeat(H, 1))
        nn.init.normal_(self.C, 0.0, math.sqrt(0.5))  # real and imaginary parts: unit complex variance
        nn.init.normal_(self.D, 0.0, 1.0)

    def _output(self, y_xH: torch.Tensor, u_xH: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        y_xH = F.gelu(y_xH + self.D.float() * u_xH.float())
        a_xH, b_xH = self.out_proj(y_xH.to(dtype)).chunk(2, dim=-1)
        return a_xH * torch.sigmoid(b_xH)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        y_BTD, _ = s4d_fft(x_BTD, self.log_dt, self.log_A_real, self.A_imag, self.C, output_final_state=False)
        return self._output(y_BTD, x_BTD, x_BTD.dtype)

    def prefill(self, x_BTD: torch.Tensor, state: dict[str, torch.Tensor]):
        """``forward`` and the state after it: the FFT form also returns the last modal state."""
        y_BTD, s_BHM2 = s4d_fft(x_BTD, self.log_dt, self.log_A_real, self.A_imag, self.C)
        return self._output(y_BTD, x_BTD, x_BTD.dtype), {"s_BHM2": s_BHM2.to(state["s_BHM2"].dtype)}

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"s_BHM2": torch.zeros(batch, self.config.d_model, self.config.modes, 2, device=device)}

    def step(self, x_BD: torch.Tensor, state: dict[str, torch.Tensor], pos: int):
        _, Z_HM, W_HM = s4d_discretize(self.log_dt, self.log_A_real, self.A_imag, self.C)
        y_BD, state["s_BHM2"] = s4d_step(x_BD, Z_HM, W_HM, state["s_BHM2"])
        return self._output(y_BD, x_BD, x_BD.dtype), state

    def state_size(self, seq_len: int) -> int:
        """M complex numbers per channel: d_state reals, independent of seq_len."""
        return self.config.d_model * self.config.d_state

    def extra_flops_per_token(self, seq_len: int) -> int:
        """The recurrence per channel: per mode a complex multiply-add (8) and the readout 2 Re(W s) (4),
        plus the D skip (2). The FFT training form costs ~10 log2(2T) + 6 per channel instead (fewer at
        M = 32 up to T ~ 2^18); the recurrence count is used because it is what decoding costs and is
        affine in T, as the accounting contract wants."""
        return self.config.d_model * (12 * self.config.modes + 2)


class FeedForward(nn.Module):
    """S4's FFN block (``ff``, expand 4, GELU): ``W_2 gelu(W_1 x)``, no biases."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d_model, bias=False)
        self.down_proj.is_residual_output = True

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x_BTD)))


class S4DLayer(nn.Module):
    """``ssm_per_layer`` pre-norm residual S4D blocks, then a pre-norm residual FFN block."""

    def __init__(self, config: S4DConfig) -> None:
        super().__init__()
        D = config.d_model
        self.ssm_norms = nn.ModuleList(RMSNorm(D, config.norm_eps) for _ in range(config.ssm_per_layer))
        self.ssms = nn.ModuleList(S4DMixer(config) for _ in range(config.ssm_per_layer))
        self.ffn_norm = RMSNorm(D, config.norm_eps)
        self.ffn = FeedForward(D, config.ffn_hidden)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        for norm, ssm in zip(self.ssm_norms, self.ssms, strict=True):
            x_BTD = x_BTD + ssm(norm(x_BTD))
        return x_BTD + self.ffn(self.ffn_norm(x_BTD))

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> list[Any]:
        return [ssm.init_state(batch, device=device, dtype=dtype) for ssm in self.ssms]

    def prefill(self, x_BTD: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """``forward`` and each S4D block's state after it."""
        after = []
        for index, (norm, ssm) in enumerate(zip(self.ssm_norms, self.ssms, strict=True)):
            y_BTD, ssm_state = ssm.prefill(norm(x_BTD), state[index])
            x_BTD = x_BTD + y_BTD
            after.append(ssm_state)
        return x_BTD + self.ffn(self.ffn_norm(x_BTD)), after

    def step(self, x_BD: torch.Tensor, state: list[Any], pos: int) -> tuple[torch.Tensor, list[Any]]:
        for index, (norm, ssm) in enumerate(zip(self.ssm_norms, self.ssms, strict=True)):
            y_BD, state[index] = ssm.step(norm(x_BD), state[index], pos)
            x_BD = x_BD + y_BD
        return x_BD + self.ffn(self.ffn_norm(x_BD)), state

    def matmul_params(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))

    def state_size(self, seq_len: int) -> int:
        return sum(ssm.state_size(seq_len) for ssm in self.ssms)

    def extra_flops_per_token(self, seq_len: int) -> int:
        return sum(ssm.extra_flops_per_token(seq_len) for ssm in self.ssms)


class S4DLanguageModel(LanguageModel):
    """``LanguageModel`` that gives the SSM parameters their own optimizer group (S4's ``_optim``)."""

    def optimizer_param_overrides(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Move ``log_dt``, ``log_A_real``, ``A_imag`` to a group with ``lr = min(ssm_lr, base lr)`` (the
        base lr when the groups carry one) and no weight decay; C, D and the rest keep their groups."""
        ssm = [
            p
            for name, p in self.named_parameters()
            if name.rsplit(".", 1)[-1] in SSM_PARAMETERS and p.requires_grad
        ]
        taken = {id(p) for p in ssm}
        base_lrs = [g["lr"] for g in groups if "lr" in g]
        lr = min([self.config.ssm_lr, *base_lrs])
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in taken]} for g in groups]
        return [*groups, {"params": ssm, "weight_decay": 0.0, "lr": lr}]


def build_s4d(config: S4DConfig) -> S4DLanguageModel:
    return S4DLanguageModel(config, [S4DLayer(config) for _ in range(config.n_layers)])


# -- sizing ------------------------------------------------------------------------------------------------


def size_s4d(target: int, *, vocab_size: int, overrides: Mapping[str, Any]) -> S4DConfig:
    """``sizing.search_shape`` over (n_layers, d_model) (12 d^2 per layer, the Transformer's, so the same
    aspect ratio 48). From the width: ffn_hidden = 4 d, d_state = 64 (S4D), capped at 2 d_model below
    d = 32 (at d = 16 the 64-state SSM parameters would outweigh the block's matrices). When the pick is
    more than 5% off (below ~10M, where the grid is coarse), the FFN moves within [2d, 5d] to the size
    (the Transformer trims its MLP within [2d, 4d]; 4d is already the top here). Fixed ``n_layers`` /
    ``d_model`` overrides restrict the search; others are held."""

    def derive(n_layers: int, d_model: int, fixed: dict[str, Any]) -> S4DConfig:
        values = {"ffn_hidden": 4 * d_model, "d_state": min(64, 2 * d_model), **fixed}
        return S4DConfig(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, **values)

    def ffn_range(config: S4DConfig) -> range:
        return swiglu_width_range(config.d_model, upper=5)

    return size_by_search(target, overrides, derive, trim_field="ffn_hidden", trim_values=ffn_range)


ARCHITECTURE = Architecture(
    name="s4d",
    config_class=S4DConfig,
    build=build_s4d,
    size_config=size_s4d,
    description="S4D: diagonal complex SSM (S4D-Lin, ZOH) as an FFT convolution + GELU + GLU, two per layer, GELU FFN 4d",
    paper="Gu, Gupta, Goel & Re 2022, On the Parameterization and Initialization of Diagonal State Space Models "
    "(arXiv:2206.11893); Gu, Goel & Re 2022, S4 (arXiv:2111.00396)",
)
