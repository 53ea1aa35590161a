"""Reference: the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t``, one token at a time, in fp32.

This is the spec the chunked form (``kernels.linear_scan.chunk``) is tested against, and its one-token
step is what the models (RG-LRU in Hawk/Griffin, Mega's damped EMA) call when decoding.

Decays come in log space (``log_a <= 0``), as every recurrence in ceiling computes them: ``a_t =
exp(log_a_t)``. Shapes: ``log_a`` broadcasts against ``b_BTN`` (``[B,T,N]``, ``[1,1,N]`` for a
time-invariant decay, ...); ``h0_BN`` is the state before the first token (zeros when None).
"""

from __future__ import annotations

import torch


def linear_scan_step(log_a_BN: torch.Tensor, b_BN: torch.Tensor, h_BN: torch.Tensor) -> torch.Tensor:
    """One token: ``h = exp(log_a) * h + b`` in fp32."""
    return torch.exp(log_a_BN.float()) * h_BN.float() + b_BN.float()


def linear_scan_ref(
    log_a: torch.Tensor, b_BTN: torch.Tensor, h0_BN: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h_BTN, h_last_BN)``, both fp32: every state and the state after the last token."""
    B, T, N = b_BTN.shape
    log_a_BTN = log_a.float().expand(B, T, N)
    h_BN = b_BTN.new_zeros(B, N, dtype=torch.float32) if h0_BN is None else h0_BN.float()
    states = []
    for t in range(T):
        h_BN = linear_scan_step(log_a_BTN[:, t], b_BTN[:, t], h_BN)
        states.append(h_BN)
    h_BTN = torch.stack(states, dim=1) if states else b_BTN.new_zeros(B, 0, N, dtype=torch.float32)
    return h_BTN, h_BN
