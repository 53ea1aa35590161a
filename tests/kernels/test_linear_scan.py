"""The linear scan beyond the catalog comparison: continuation with a carried state, closed forms,
extreme decays, broadcast decays, dtypes."""

from __future__ import annotations

import pytest
import torch

from kernels.linear_scan import linear_scan, linear_scan_ref, linear_scan_step


def _inputs(B=2, T=45, N=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    log_a = -torch.rand(B, T, N, generator=generator)
    b = torch.randn(B, T, N, generator=generator)
    h0 = torch.randn(B, N, generator=generator)
    return log_a, b, h0


@pytest.mark.parametrize("split", [1, 16, 30], ids=lambda s: f"split{s}")
def test_continuing_from_the_carried_state_equals_one_run(split):
    log_a, b, h0 = _inputs()
    whole, last = linear_scan(log_a, b, h0, chunk_size=8)
    first, carried = linear_scan(log_a[:, :split], b[:, :split], h0, chunk_size=8)
    second, last2 = linear_scan(log_a[:, split:], b[:, split:], carried, chunk_size=8)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(last2, last)


def test_constant_decay_is_an_exponential_moving_sum():
    """a_t = a: h_t = sum_j a^(t-j) b_j (+ a^(t+1) h0), the convolution form of an EMA."""
    log_a, b, h0 = _inputs(T=20)
    log_a_N = log_a[0, 0]
    h, _ = linear_scan(log_a_N.expand(1, 1, -1), b, h0, chunk_size=4)
    t = torch.arange(20)
    lags_TT = (t[:, None] - t[None, :]).clamp(min=0).float()
    kernel_TTN = torch.exp(lags_TT[..., None] * log_a_N) * (t[:, None] >= t[None, :])[..., None]
    expected = (
        torch.einsum("tjn,bjn->btn", kernel_TTN, b) + torch.exp((t[:, None] + 1) * log_a_N) * h0[:, None]
    )
    torch.testing.assert_close(h, expected, rtol=1e-5, atol=1e-5)


def test_no_decay_is_a_cumulative_sum_and_full_decay_forgets():
    _, b, h0 = _inputs()
    h, _ = linear_scan(torch.zeros_like(b), b, h0, chunk_size=8)
    torch.testing.assert_close(h, b.cumsum(1) + h0[:, None], rtol=1e-5, atol=1e-4)
    h, last = linear_scan(torch.full_like(b, -200.0), b, h0, chunk_size=8)
    torch.testing.assert_close(h, b)
    torch.testing.assert_close(last, b[:, -1])


def test_extreme_decays_stay_finite_with_gradients():
    log_a, b, h0 = _inputs(T=64)
    log_a = (log_a * 300).requires_grad_()  # a down to e^-300 per step: a cumsum form would overflow
    b.requires_grad_()
    h, _ = linear_scan(log_a, b, h0, chunk_size=64)
    h.sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(log_a.grad).all() and torch.isfinite(b.grad).all()
    expected, _ = linear_scan_ref(log_a, b, h0)
    torch.testing.assert_close(h, expected)


def test_time_invariant_decay_broadcasts_and_its_gradient_keeps_its_shape():
    _, b, _ = _inputs()
    log_a = (-torch.rand(1, 1, b.shape[-1])).requires_grad_()
    h, _ = linear_scan(log_a, b, chunk_size=8)
    (grad,) = torch.autograd.grad(h.square().sum(), log_a)
    href, _ = linear_scan_ref(log_a, b)
    (grad_ref,) = torch.autograd.grad(href.square().sum(), log_a)
    assert grad.shape == log_a.shape
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-4)


def test_bf16_inputs_give_fp32_states_and_bf16_gradients():
    log_a, b, h0 = _inputs()
    log_a, b = log_a.bfloat16().requires_grad_(), b.bfloat16().requires_grad_()
    h, last = linear_scan(log_a, b, h0, chunk_size=8)
    assert h.dtype == last.dtype == torch.float32
    h.sum().backward()
    assert log_a.grad.dtype == b.grad.dtype == torch.bfloat16


def test_step_is_one_token_of_the_reference():
    log_a, b, h0 = _inputs(T=1)
    h, last = linear_scan_ref(log_a, b, h0)
    torch.testing.assert_close(linear_scan_step(log_a[:, 0], b[:, 0], h0), last)
    torch.testing.assert_close(h[:, 0], last)
