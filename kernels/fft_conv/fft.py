"""The fast forms: a causal convolution through the FFT, and S4D's kernel (a Vandermonde product).

``fft_causal_conv``: zero-pad input and kernel to ``2T`` (so the circular convolution of length ``2T``
equals the linear one on the first ``T`` outputs), ``y = irfft(rfft(u) * rfft(k))[:T]``, in fp32 even
under autocast (bf16 FFTs lose the small taps). ``O(T log T)`` per channel instead of ``O(T^2)``.
Its own backward (the correlations ``du = irfft(rfft(dy) conj(rfft(k)))[:T]``,
``dk = irfft(sum_b rfft(dy) conj(rfft(u)))[:T]``, from the spectra the forward keeps) takes 1 FFT and 2
inverse FFTs where autograd through the FFT ops takes more transforms, pads and copies, and sums ``dk``
over the batch in the frequency domain (one inverse FFT per channel, not per sequence).
Short sequences (``DIRECT_MAX_LEN``) take the direct Toeplitz matmul: cheaper there, and exactly causal.

``s4d_kernel``: ``K_l = 2 Re(sum_m W_m Z_m^l)``. Writing ``l = q b + r`` (``b ~ sqrt(T)``),
``Z^l = Z^r (Z^b)^q`` with both factors ``exp(r dt A)``, ``exp(q b dt A)`` computed directly, so
``K[q b + r] = 2 Re(sum_m (W_m Z_m^r) (Z_m^b)^q)`` is one batched complex matmul over the modes: no
``[H, M, T]`` Vandermonde matrix (1 GB per layer at H = 2048, M = 32, T = 2048) and ``2 sqrt(T)``
complex exponentials per mode instead of ``T``.

``s4d_fft``: the S4D layer's training form ``y = K * u`` by ``fft_causal_conv``, plus, for an initial /
final state (prefill continuation), ``2 Re(sum_m W_m Z_m^(t+1) s0_m)`` and
``s_T = Z^T s0 + sum_j Z^(T-1-j) u_j`` by the same factored Vandermonde products.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels.fft_conv.naive import s4d_discretize

DIRECT_MAX_LEN = 64  # fft_causal_conv(method="auto") convolves directly up to this length


def direct_causal_conv(u_BTH: torch.Tensor, k_HT: torch.Tensor) -> torch.Tensor:
    """``y_BTH`` (fp32) by a lower-triangular Toeplitz matmul per channel: ``O(T^2)``, for short ``T``."""
    T = u_BTH.shape[1]
    with torch.autocast(u_BTH.device.type, enabled=False):
        lag_TT = torch.arange(T, device=u_BTH.device)[:, None] - torch.arange(T, device=u_BTH.device)
        k_HTT = k_HT[:, :T].float()[:, lag_TT.clamp(min=0)] * (lag_TT >= 0)  # [h, t, s] = k[h, t - s]
        y_HTB = torch.matmul(k_HTT, u_BTH.float().permute(2, 1, 0))
    return y_HTB.permute(2, 1, 0)


def fft_causal_conv(
    u_BTH: torch.Tensor, k_HT: torch.Tensor, *, method: str = "auto"
) -> tuple[torch.Tensor, None]:
    """``(y_BTH, None)`` in fp32: ``y_t[h] = sum_{j<=t} k[h, j] u_{t-j}[h]`` (same as ``causal_conv_ref``).

    ``method``: ``"fft"``; ``"direct"`` (Toeplitz matmul); ``"auto"``: direct up to ``DIRECT_MAX_LEN``
    tokens, where it is the cheaper (``T`` flops per token against ~``10 log2(2T)``) and exactly causal
    (an FFT spreads float rounding from every position to every other: outputs move by ~1e-7 when a
    *later* input changes), FFT beyond.
    """
    T = u_BTH.shape[1]
    if method not in ("auto", "fft", "direct"):
        raise ValueError(f"method must be 'auto', 'fft' or 'direct', got {method!r}")
    if method == "direct" or (method == "auto" and T <= DIRECT_MAX_LEN):
        return direct_causal_conv(u_BTH, k_HT), None
    with torch.autocast(u_BTH.device.type, enabled=False):
        return _FFTConv.apply(u_BTH.float(), k_HT[:, :T].float()), None


class _FFTConv(torch.autograd.Function):
    """``y_BTH = irfft(rfft(u) rfft(k))[:T]`` (FFT length ``2T``) with the correlations as its backward."""

    @staticmethod
    def forward(ctx, u_BTH: torch.Tensor, k_HT: torch.Tensor) -> torch.Tensor:
        T = u_BTH.shape[1]
        u_f = torch.fft.rfft(u_BTH.transpose(1, 2), n=2 * T)  # [B, H, T + 1]
        k_f = torch.fft.rfft(k_HT, n=2 * T)  # [H, T + 1]
        ctx.save_for_backward(u_f, k_f)
        return torch.fft.irfft(u_f * k_f, n=2 * T)[..., :T].transpose(1, 2)

    @staticmethod
    def backward(ctx, dy_BTH: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u_f, k_f = ctx.saved_tensors
        T = dy_BTH.shape[1]
        with torch.autocast(dy_BTH.device.type, enabled=False):
            # y_t = sum_j k_j u_{t-j}: du_s = sum_t dy_t k_{t-s}, dk_j = sum_t dy_t u_{t-j} (correlations;
            # the zero padding to 2T keeps the circular wrap-around out of the first T lags)
            dy_f = torch.fft.rfft(dy_BTH.float().transpose(1, 2), n=2 * T)  # [B, H, T + 1]
            du_BHT = torch.fft.irfft(dy_f * k_f.conj(), n=2 * T)[..., :T]
            dk_HT = torch.fft.irfft((dy_f * u_f.conj()).sum(0), n=2 * T)[..., :T]
        return du_BHT.transpose(1, 2), dk_HT


def vandermonde_factors(dtA_HM: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``Z^l = P[..., l % b] * Q[..., l // b]`` for ``l < length``: ``P_HMb = exp(r dtA)`` (``r < b``) and
    ``Q_HMq = exp(q b dtA)`` (``q < ceil(length / b)``), ``b = ceil(sqrt(length))``."""
    b = max(1, math.ceil(math.sqrt(length)))
    r_b = torch.arange(b, device=dtA_HM.device, dtype=torch.float32)
    q_q = torch.arange(math.ceil(length / b), device=dtA_HM.device, dtype=torch.float32) * b
    return torch.exp(dtA_HM[:, :, None] * r_b), torch.exp(dtA_HM[:, :, None] * q_q)


def s4d_kernel(
    log_dt_H: torch.Tensor,
    log_A_real_HM: torch.Tensor,
    A_imag_HM: torch.Tensor,
    C_HM2: torch.Tensor,
    length: int,
) -> torch.Tensor:
    """S4D's convolution kernel ``K_HT`` (fp32, real): ``K_l = 2 Re(sum_m W_m Z_m^l)``, ``l < length``."""
    with torch.autocast(log_dt_H.device.type, enabled=False):
        dtA_HM, _, W_HM = s4d_discretize(log_dt_H, log_A_real_HM, A_imag_HM, C_HM2)
        P_HMb, Q_HMq = vandermonde_factors(dtA_HM, length)
        # K[h, q, r] = sum_m Q[h, m, q] (W P)[h, m, r]
        K_HQb = torch.matmul(Q_HMq.transpose(1, 2), W_HM[:, :, None] * P_HMb)
        return 2.0 * K_HQb.real.flatten(1)[:, :length]


def s4d_fft(
    u_BTH: torch.Tensor,
    log_dt_H: torch.Tensor,
    log_A_real_HM: torch.Tensor,
    A_imag_HM: torch.Tensor,
    C_HM2: torch.Tensor,
    h0_BHM2: torch.Tensor | None = None,
    *,
    output_final_state: bool = True,
    conv_method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y_BTH, s_last_BHM2)`` in fp32, as ``s4d_ref`` computes token by token (``s_last`` None when
    ``output_final_state`` is False: the training form needs only ``y``). ``conv_method``: see
    ``fft_causal_conv``."""
    B, T, H = u_BTH.shape
    k_HT = s4d_kernel(log_dt_H, log_A_real_HM, A_imag_HM, C_HM2, T)
    y_BTH, _ = fft_causal_conv(u_BTH, k_HT, method=conv_method)
    if h0_BHM2 is None and not output_final_state:
        return y_BTH, None
    with torch.autocast(u_BTH.device.type, enabled=False):
        dtA_HM, Z_HM, W_HM = s4d_discretize(log_dt_H, log_A_real_HM, A_imag_HM, C_HM2)
        P_HMb, Q_HMq = vandermonde_factors(dtA_HM, T)
        b, n_q = P_HMb.shape[-1], Q_HMq.shape[-1]
        s0_BHM = None if h0_BHM2 is None else torch.view_as_complex(h0_BHM2.float().contiguous())
        if s0_BHM is not None:  # the initial state's echo 2 Re(sum_m (W Z s0)_m Z_m^t), t < T
            coef_HMBb = (
                (W_HM * Z_HM)[:, :, None, None] * s0_BHM.permute(1, 2, 0)[..., None] * P_HMb[:, :, None]
            )
            echo_HqBb = torch.matmul(Q_HMq.transpose(1, 2), coef_HMBb.flatten(2)).unflatten(2, (B, b))
            echo_BHT = 2.0 * echo_HqBb.real.permute(2, 0, 1, 3).flatten(2)[..., :T]
            y_BTH = y_BTH + echo_BHT.transpose(1, 2)
        if not output_final_state:
            return y_BTH, None
        # s_T = Z^T s0 + sum_l Z^l u_{T-1-l}, l = q b + r: the reversed inputs against P, then Q
        u_rev_BHT = F.pad(u_BTH.float().flip(1), (0, 0, 0, n_q * b - T)).transpose(1, 2)
        u_HBqb = u_rev_BHT.reshape(B, H, n_q, b).transpose(0, 1).to(P_HMb.dtype)
        X_HBqM = torch.matmul(u_HBqb, P_HMb.transpose(1, 2)[:, None])  # sum over r
        s_BHM = (X_HBqM * Q_HMq.transpose(1, 2)[:, None]).sum(2).transpose(0, 1)  # sum over q
        if s0_BHM is not None:
            s_BHM = s_BHM + torch.exp(dtA_HM * T) * s0_BHM
    return y_BTH, torch.view_as_real(s_BHM)
