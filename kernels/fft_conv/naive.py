"""References, token by token in fp32: a causal convolution with a kernel as long as the sequence, and
the diagonal state space model (S4D) it computes when the kernel is an SSM's.

- ``causal_conv_ref(u_BTH, k_HT)``: ``y_t[h] = sum_{j=0..t} k[h, j] u_{t-j}[h]``, each output by a direct
  sum over the past (the spec of ``fft.fft_causal_conv``).
- ``s4d_ref(u_BTH, log_dt_H, log_A_real_HM, A_imag_HM, C_HM2, h0_BHM2)``: the S4D recurrence per channel
  ``h`` and complex mode ``m`` (``M = N / 2`` modes; each stands for a conjugate pair)::

      A = -exp(log_A_real) + i A_imag,   dt = exp(log_dt)
      Z = exp(dt A)                       (zero-order hold: the state's decay per step)
      W = C (Z - 1) / A                   (the ZOH input matrix (Z - 1) / A * B, with B = 1 folded into C)
      s_t = Z s_{t-1} + u_t,   y_t = 2 Re(sum_m W_m s_t[m])

  so ``y = K * u`` with ``K_l = 2 Re(sum_m W_m Z_m^l)`` (``s4d.s4d_kernel``). Complex numbers travel as
  real pairs ``[..., 2]`` (``torch.view_as_real``); the state ``[B, H, M, 2]`` is fp32.
"""

from __future__ import annotations

import torch


def causal_conv_ref(u_BTH: torch.Tensor, k_HT: torch.Tensor) -> tuple[torch.Tensor, None]:
    """``(y_BTH, None)`` in fp32; ``k_HT`` holds at least ``T`` taps (tap 0 multiplies the current input)."""
    B, T, H = u_BTH.shape
    u, k = u_BTH.float(), k_HT.float()
    outputs = []
    for t in range(T):
        past_BTH = u[:, : t + 1].flip(1)  # u_t, u_{t-1}, ..., u_0
        outputs.append((past_BTH * k[:, : t + 1].T).sum(1))
    y_BTH = torch.stack(outputs, dim=1) if outputs else u.new_zeros(B, 0, H)
    return y_BTH, None


def s4d_discretize(
    log_dt_H: torch.Tensor, log_A_real_HM: torch.Tensor, A_imag_HM: torch.Tensor, C_HM2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dtA_HM, Z_HM, W_HM)``, complex64: the log decay ``dt A``, ``Z = exp(dt A)``, ``W = C (Z - 1) / A``."""
    A_HM = torch.complex(-torch.exp(log_A_real_HM.float()), A_imag_HM.float())
    dtA_HM = A_HM * torch.exp(log_dt_H.float())[:, None]
    Z_HM = torch.exp(dtA_HM)
    W_HM = torch.view_as_complex(C_HM2.float().contiguous()) * (Z_HM - 1.0) / A_HM
    return dtA_HM, Z_HM, W_HM


def s4d_step(
    u_BH: torch.Tensor, Z_HM: torch.Tensor, W_HM: torch.Tensor, s_BHM2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token: ``(y_BH fp32, s_BHM2)`` from the discretised ``Z``, ``W`` (``s4d_discretize``)."""
    s_BHM = Z_HM * torch.view_as_complex(s_BHM2.float().contiguous()) + u_BH.float()[:, :, None]
    y_BH = 2.0 * (W_HM * s_BHM).real.sum(-1)
    return y_BH, torch.view_as_real(s_BHM)


def s4d_ref(
    u_BTH: torch.Tensor,
    log_dt_H: torch.Tensor,
    log_A_real_HM: torch.Tensor,
    A_imag_HM: torch.Tensor,
    C_HM2: torch.Tensor,
    h0_BHM2: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_BTH, s_last_BHM2)`` in fp32: the S4D recurrence token by token from ``h0`` (zeros if None)."""
    B, T, H = u_BTH.shape
    M = log_A_real_HM.shape[-1]
    _, Z_HM, W_HM = s4d_discretize(log_dt_H, log_A_real_HM, A_imag_HM, C_HM2)
    s_BHM2 = u_BTH.new_zeros(B, H, M, 2, dtype=torch.float32) if h0_BHM2 is None else h0_BHM2.float()
    outputs = []
    for t in range(T):
        y_BH, s_BHM2 = s4d_step(u_BTH[:, t], Z_HM, W_HM, s_BHM2)
        outputs.append(y_BH)
    y_BTH = torch.stack(outputs, dim=1) if outputs else u_BTH.new_zeros(B, 0, H, dtype=torch.float32)
    return y_BTH, s_BHM2
