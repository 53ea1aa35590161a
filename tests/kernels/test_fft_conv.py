"""Long convolutions and S4D specifics: the FFT and direct forms beyond the catalog's short lengths, exact
causality of the short-sequence path, the S4D kernel as the recurrence's impulse response, the factored
Vandermonde, continuation from a carried state."""

from __future__ import annotations

import math

import pytest
import torch

from kernels.fft_conv import (
    causal_conv_ref,
    direct_causal_conv,
    fft_causal_conv,
    make_conv_inputs,
    make_s4d_inputs,
    s4d_discretize,
    s4d_fft,
    s4d_kernel,
    s4d_ref,
    vandermonde_factors,
)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("method", ["fft", "direct", "auto"])
@pytest.mark.parametrize("seq_len", [1, 7, 100])
def test_every_method_matches_the_direct_sum_with_gradients(method, seq_len):
    inputs = make_conv_inputs(2, seq_len, 1, torch.Generator().manual_seed(seq_len))
    results = []
    for fn, kwargs in ((causal_conv_ref, {}), (fft_causal_conv, {"method": method})):
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
        y, _ = fn(**leaves, **kwargs)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        results.append((y, leaves["u_BTH"].grad, leaves["k_HT"].grad))
    for actual, expected in zip(results[1], results[0], strict=True):
        assert _rel(actual, expected) < 1e-5


def test_the_short_sequence_path_is_exactly_causal():
    inputs = {k: v.detach() for k, v in make_conv_inputs(2, 20, 1, torch.Generator().manual_seed(0)).items()}
    changed = inputs["u_BTH"].clone()
    changed[:, 11] += 1.0
    before = direct_causal_conv(inputs["u_BTH"], inputs["k_HT"])
    after = direct_causal_conv(changed, inputs["k_HT"])
    assert torch.equal(before[:, :11], after[:, :11])
    assert not torch.equal(before[:, 11:], after[:, 11:])


def test_s4d_kernel_is_the_impulse_response_of_the_recurrence():
    p = make_s4d_inputs(1, 1, 1, torch.Generator().manual_seed(1))
    params = {k: p[k].detach() for k in ("log_dt_H", "log_A_real_HM", "A_imag_HM", "C_HM2")}
    T, H = 70, p["log_dt_H"].shape[0]
    impulse = torch.zeros(1, T, H)
    impulse[:, 0] = 1.0
    response, _ = s4d_ref(impulse, **params)
    torch.testing.assert_close(s4d_kernel(**params, length=T), response[0].T, rtol=1e-4, atol=1e-5)


def test_s4d_lin_kernel_at_init_has_the_closed_form():
    """One mode, A = -1/2 (m = 0), C = 1: K_l = 2 Re((e^(dt A) - 1) / A e^(l dt A)) = 4 (1 - e^(-dt/2)) e^(-l dt/2)."""
    dt = 0.05
    log_dt = torch.tensor([math.log(dt)])
    kernel = s4d_kernel(
        log_dt, torch.full((1, 1), math.log(0.5)), torch.zeros(1, 1), torch.tensor([[[1.0, 0.0]]]), 30
    )
    expected = 4 * (1 - math.exp(-dt / 2)) * torch.exp(-torch.arange(30) * dt / 2)
    torch.testing.assert_close(kernel[0], expected.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("length", [1, 10, 37, 64])
def test_factored_vandermonde_gives_the_powers(length):
    p = make_s4d_inputs(1, 1, 1, torch.Generator().manual_seed(2))
    dtA, _, _ = s4d_discretize(
        p["log_dt_H"].detach(), p["log_A_real_HM"].detach(), p["A_imag_HM"].detach(), p["C_HM2"].detach()
    )
    P, Q = vandermonde_factors(dtA, length)
    b = P.shape[-1]
    powers = (Q[:, :, :, None] * P[:, :, None, :]).flatten(2)[..., :length]
    expected = torch.exp(dtA[:, :, None] * torch.arange(length, dtype=torch.float32))
    torch.testing.assert_close(powers, expected, rtol=1e-4, atol=1e-5)
    assert b * Q.shape[-1] >= length


@pytest.mark.parametrize("seq_len", [90, 200])
def test_s4d_fft_beyond_the_direct_length_matches_the_recurrence(seq_len):
    inputs = {
        k: v.detach() for k, v in make_s4d_inputs(2, seq_len, 1, torch.Generator().manual_seed(3)).items()
    }
    y_ref, s_ref = s4d_ref(**inputs)
    y, s = s4d_fft(**inputs)
    assert _rel(y, y_ref) < 1e-4 and _rel(s, s_ref) < 1e-4


def test_s4d_continuation_from_the_carried_state():
    inputs = {k: v.detach() for k, v in make_s4d_inputs(1, 80, 1, torch.Generator().manual_seed(4)).items()}
    inputs.pop("h0_BHM2")
    y_full, s_full = s4d_fft(**inputs)
    u = inputs.pop("u_BTH")
    y1, s1 = s4d_fft(u[:, :30], **inputs)
    y2, s2 = s4d_fft(u[:, 30:], **inputs, h0_BHM2=s1)
    assert _rel(torch.cat([y1, y2], dim=1), y_full) < 1e-4 and _rel(s2, s_full) < 1e-4


def test_training_form_skips_the_state_and_stays_fp32_under_autocast():
    inputs = {k: v.detach() for k, v in make_s4d_inputs(2, 100, 1, torch.Generator().manual_seed(5)).items()}
    inputs.pop("h0_BHM2")
    u = inputs.pop("u_BTH")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = s4d_fft(u.bfloat16(), **inputs, output_final_state=False)
    assert state is None and y.dtype == torch.float32
    y_ref, _ = s4d_ref(u.bfloat16().float(), **inputs)
    assert _rel(y, y_ref) < 1e-4
