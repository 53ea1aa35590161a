"""Reference: Mamba's selective scan, one token at a time, in fp32 (the spec).

Per channel ``e`` of ``E`` (Mamba's ``d_inner``) and state index ``n`` of ``N`` (``d_state``)::

    h_t[e, n] = exp(dt_t[e] * A[e, n]) * h_{t-1}[e, n] + dt_t[e] * B_t[n] * x_t[e]
    y_t[e]    = sum_n C_t[n] * h_t[e, n] + D[e] * x_t[e]

``dt`` is the (already positive: softplus'd) step size, ``A < 0`` the continuous-time diagonal, so
``dt * A <= 0`` is the log decay (the zero-order hold of ``A``; ``B`` is discretised by Euler,
``dt * B``, as in Mamba's kernels). ``B`` and ``C`` are shared by all channels (one group).
The state ``h`` is ``[B, E, N]`` fp32; ``h0_BEN`` is the state before the first token (zeros if None).
"""

from __future__ import annotations

import torch


def selective_scan_step(
    x_BE: torch.Tensor,
    dt_BE: torch.Tensor,
    A_EN: torch.Tensor,
    B_BN: torch.Tensor,
    C_BN: torch.Tensor,
    D_E: torch.Tensor | None,
    h_BEN: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token: ``(y_BE, h_BEN)``, both fp32."""
    x_BE, dt_BE = x_BE.float(), dt_BE.float()
    decay_BEN = torch.exp(dt_BE[:, :, None] * A_EN.float())
    h_BEN = decay_BEN * h_BEN.float() + (dt_BE * x_BE)[:, :, None] * B_BN.float()[:, None, :]
    y_BE = (h_BEN * C_BN.float()[:, None, :]).sum(-1)
    if D_E is not None:
        y_BE = y_BE + D_E.float() * x_BE
    return y_BE, h_BEN


def selective_scan_ref(
    x_BTE: torch.Tensor,
    dt_BTE: torch.Tensor,
    A_EN: torch.Tensor,
    B_BTN: torch.Tensor,
    C_BTN: torch.Tensor,
    D_E: torch.Tensor | None = None,
    h0_BEN: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_BTE, h_last_BEN)`` in fp32: every output and the state after the last token."""
    B, T, E = x_BTE.shape
    N = A_EN.shape[-1]
    h_BEN = x_BTE.new_zeros(B, E, N, dtype=torch.float32) if h0_BEN is None else h0_BEN.float()
    outputs = []
    for t in range(T):
        y_BE, h_BEN = selective_scan_step(
            x_BTE[:, t], dt_BTE[:, t], A_EN, B_BTN[:, t], C_BTN[:, t], D_E, h_BEN
        )
        outputs.append(y_BE)
    y_BTE = torch.stack(outputs, dim=1) if outputs else x_BTE.new_zeros(B, 0, E, dtype=torch.float32)
    return y_BTE, h_BEN
