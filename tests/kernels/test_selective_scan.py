"""Selective scan specifics: several segments (the catalog's tiny shapes fit in one), continuation from a
carried state, chunk-size invariance, strong decays, the no-decay special case, bounded saved memory."""

from __future__ import annotations

import pytest
import torch

import kernels.selective_scan.chunk as chunk_module
from kernels.selective_scan import make_inputs, selective_scan, selective_scan_ref


def _leaves(inputs):
    return {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _outputs_and_grads(fn, inputs, **kwargs):
    leaves = _leaves(inputs)
    y, h = fn(**leaves, **kwargs)
    generator = torch.Generator().manual_seed(5)
    loss = (y * torch.randn(y.shape, generator=generator)).sum() + (
        h * torch.randn(h.shape, generator=generator)
    ).sum()
    loss.backward()
    return y, h, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("seq_len, chunk_size", [(45, 8), (64, 16), (13, 32), (33, 1)])
def test_many_segments_match_the_reference(monkeypatch, seq_len, chunk_size):
    monkeypatch.setattr(chunk_module, "SEGMENT_ELEMENTS", 1)  # one chunk per segment
    inputs = make_inputs(2, seq_len, 1, torch.Generator().manual_seed(seq_len))
    y_ref, h_ref, g_ref = _outputs_and_grads(selective_scan_ref, inputs)
    y, h, g = _outputs_and_grads(selective_scan, inputs, chunk_size=chunk_size)
    assert _rel(y, y_ref) < 1e-4 and _rel(h, h_ref) < 1e-4
    for name in g_ref:
        assert _rel(g[name], g_ref[name]) < 1e-4, name


def test_continuing_from_the_carried_state_equals_one_pass():
    inputs = {k: v.detach() for k, v in make_inputs(2, 50, 1, torch.Generator().manual_seed(0)).items()}
    full_y, full_h = selective_scan(**inputs, chunk_size=8)
    split = 23
    first = {**inputs, "x_BTE": inputs["x_BTE"][:, :split], "dt_BTE": inputs["dt_BTE"][:, :split]}
    first.update(B_BTN=inputs["B_BTN"][:, :split], C_BTN=inputs["C_BTN"][:, :split])
    y1, h1 = selective_scan(**first, chunk_size=8)
    second = {**inputs, "x_BTE": inputs["x_BTE"][:, split:], "dt_BTE": inputs["dt_BTE"][:, split:]}
    second.update(B_BTN=inputs["B_BTN"][:, split:], C_BTN=inputs["C_BTN"][:, split:], h0_BEN=h1)
    y2, h2 = selective_scan(**second, chunk_size=8)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), full_y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h2, full_h, rtol=1e-5, atol=1e-5)


def test_chunk_size_does_not_change_the_result():
    inputs = {k: v.detach() for k, v in make_inputs(1, 41, 1, torch.Generator().manual_seed(1)).items()}
    results = [selective_scan(**inputs, chunk_size=c)[0] for c in (1, 3, 16, 64)]
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=1e-5, atol=1e-5)


def test_strong_decays_stay_finite_and_exact():
    inputs = {k: v.detach() for k, v in make_inputs(1, 40, 1, torch.Generator().manual_seed(2)).items()}
    inputs["dt_BTE"] = inputs["dt_BTE"] * 0 + 50.0  # exp(-50 * 16) per step: underflows to 0
    y, h = selective_scan(**inputs, chunk_size=16)
    y_ref, h_ref = selective_scan_ref(**inputs)
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("segment_elements", [1, 1 << 19], ids=["chunk-per-segment", "one-segment"])
def test_extreme_decays_match_the_reference_with_every_gradient(monkeypatch, segment_elements):
    """dt from ~1e-4 to ~1e2 (per-token log decays down to e^-5000, underflowing to exactly 0 in fp32),
    a run of full-forgetting tokens inside a chunk, an odd length: outputs, final state and every
    gradient as the reference's (no inf/nan from the cumulative decays, no lost carry)."""
    monkeypatch.setattr(chunk_module, "SEGMENT_ELEMENTS", segment_elements)
    generator = torch.Generator().manual_seed(8)
    inputs = {k: v.detach() for k, v in make_inputs(2, 53, 1, generator).items()}
    inputs["dt_BTE"] = torch.nn.functional.softplus(
        6.0 * torch.randn(inputs["dt_BTE"].shape, generator=generator)
    )
    inputs["dt_BTE"][:, 20:23] = 100.0  # forget everything before token 20 (in the middle of a chunk of 8)
    y_ref, h_ref, g_ref = _outputs_and_grads(selective_scan_ref, inputs)
    y, h, g = _outputs_and_grads(selective_scan, inputs, chunk_size=8)
    assert all(torch.isfinite(t).all() for t in (y, h, *g.values()))
    assert _rel(y, y_ref) < 1e-4 and _rel(h, h_ref) < 1e-4
    for name in g_ref:
        assert _rel(g[name], g_ref[name]) < 1e-4, name


def test_without_decay_the_state_is_a_running_sum():
    """A -> 0: h_t = h0 + sum_{j<=t} dt_j B_j x_j (outer product), y_t = C_t . h_t + D x_t."""
    g = torch.Generator().manual_seed(3)
    B, T, E, N = 2, 19, 4, 3
    x, dt = torch.randn(B, T, E, generator=g), torch.rand(B, T, E, generator=g)
    Bm, Cm, D, h0 = (torch.randn(B, T, N, generator=g), torch.randn(B, T, N, generator=g),
                     torch.randn(E, generator=g), torch.randn(B, E, N, generator=g))  # fmt: skip
    y, h = selective_scan(x, dt, torch.zeros(E, N), Bm, Cm, D, h0, chunk_size=4)
    states = h0[:, None] + torch.cumsum((dt * x)[..., None] * Bm[:, :, None, :], dim=1)
    torch.testing.assert_close(y, (states * Cm[:, :, None, :]).sum(-1) + D * x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, states[:, -1], rtol=1e-5, atol=1e-5)


def test_saved_memory_is_a_fraction_of_the_full_state_sequence(monkeypatch):
    """Autograd keeps the inputs and one state per segment, never [B, T, E, N]."""
    monkeypatch.setattr(chunk_module, "SEGMENT_ELEMENTS", 1 << 14)
    B, T, heads = 2, 512, 2
    inputs = _leaves(make_inputs(B, T, heads, torch.Generator().manual_seed(4)))
    E, N = inputs["A_EN"].shape
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y, h = selective_scan(**inputs, chunk_size=16)
    one_chunk_segments = T // 16  # SEGMENT_ELEMENTS = B * 16 * E * N: one chunk per segment
    assert sum(saved) <= 2 * B * T * (E + N) + E * N + E + one_chunk_segments * B * E * N
    assert sum(saved) <= B * T * E * N / 3
    (y.sum() + h.sum()).backward()


def test_bf16_inputs_give_fp32_outputs():
    inputs = {
        k: v.detach().bfloat16() for k, v in make_inputs(1, 20, 1, torch.Generator().manual_seed(6)).items()
    }
    y, h = selective_scan(**inputs)
    assert y.dtype == torch.float32 and h.dtype == torch.float32
    y_ref, _ = selective_scan_ref(**inputs)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
