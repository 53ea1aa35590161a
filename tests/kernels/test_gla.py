"""The gated-linear-attention kernel beyond the catalog comparison: continuation with a carried state, the
three per-channel regimes (strong decays included) against the reference, reductions to known forms
(plain causal linear attention, RetNet's parallel form, per-head = per-channel with equal channels, the
RWKV-6 bonus), extreme decays, bf16 inputs and autocast."""

from __future__ import annotations

import pytest
import torch

import kernels.gla.chunk as gla_chunk
from kernels.gla import (
    chunk_gla,
    gla_ref,
    gla_step,
    make_channel_decay_inputs,
    make_head_decay_inputs,
    make_rwkv6_inputs,
)

MAKERS = {
    "head": make_head_decay_inputs,
    "channel": make_channel_decay_inputs,
    "bonus": make_rwkv6_inputs,
}


def _inputs(kind: str, T: int = 45, seed: int = 0, **kwargs) -> dict:
    made = MAKERS[kind](2, T, 2, torch.Generator().manual_seed(seed), key_dim=16, value_dim=8, **kwargs)
    return {name: value.detach() for name, value in made.items()}


def _rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


def _time_slice(inputs: dict, start: int, stop: int | None, initial_state) -> dict:
    sliced = {
        name: value[:, start:stop] for name, value in inputs.items() if name not in ("initial_state", "u_HK")
    }
    extra = {"u_HK": inputs["u_HK"]} if "u_HK" in inputs else {}
    return {**sliced, **extra, "initial_state": initial_state}


@pytest.mark.parametrize("split", [1, 16, 30], ids=lambda s: f"split{s}")
@pytest.mark.parametrize("kind", list(MAKERS))
def test_continuing_from_the_carried_state_equals_one_run(kind, split):
    inputs = _inputs(kind)
    whole, last = chunk_gla(**inputs, chunk_size=8)
    first, carried = chunk_gla(**_time_slice(inputs, 0, split, inputs["initial_state"]), chunk_size=8)
    second, last2 = chunk_gla(**_time_slice(inputs, split, None, carried), chunk_size=8)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last2, last, rtol=1e-5, atol=1e-5)


def _check_against_reference(inputs: dict, **kwargs) -> None:
    leaves = {n: v.clone().requires_grad_(True) for n, v in inputs.items()}
    ref_leaves = {n: v.clone().requires_grad_(True) for n, v in inputs.items()}
    out, state = chunk_gla(**leaves, **kwargs)
    ref_out, ref_state = gla_ref(**ref_leaves)
    assert _rel(out, ref_out) < 1e-4 and _rel(state, ref_state) < 1e-4
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    (out * weights).sum().add(state.sum()).backward()
    (ref_out * weights).sum().add(ref_state.sum()).backward()
    for name in inputs:
        assert torch.isfinite(leaves[name].grad).all(), name
        assert _rel(leaves[name].grad, ref_leaves[name].grad) < 1e-3, name


@pytest.mark.parametrize(
    "kind, strong",
    [("channel", {"strength": 100.0}), ("bonus", {"w_max": 3.0})],
    ids=["gla-30-per-token", "rwkv6-20-per-token"],
)
@pytest.mark.parametrize("chunk_size, sub", [(16, 4), (32, 8), (64, 16), (12, 5)], ids=lambda x: str(x))
def test_strong_per_channel_decays_match_the_reference(kind, strong, chunk_size, sub):
    """Decays of e^-20..e^-30 per token in some channels: split factors would overflow within a chunk;
    the kernel must fall back (regime 3) and stay exact, gradients included."""
    _check_against_reference(_inputs(kind, T=70, **strong), chunk_size=chunk_size, sub_chunk_size=sub)


@pytest.mark.parametrize(
    "limit, checks",
    [(1e9, [True]), (1.5, [False, True]), (0.0, [False, False])],
    ids=["regime1-chunk", "regime2-subchunk", "regime3-logspace"],
)
@pytest.mark.parametrize("kind", ["channel", "bonus"])
def test_every_per_channel_regime_is_exact(kind, limit, checks, monkeypatch):
    """``SPLIT_LIMIT`` decides the regime (these inputs decay by 2..3.5 per chunk of 16 and by 0.9..1.4
    per sub-chunk of 4); forcing each one on the same inputs gives the reference."""
    monkeypatch.setattr(gla_chunk, "SPLIT_LIMIT", limit)
    seen = []
    original = gla_chunk._spans_within_limit

    def spy(L, g, sub):
        seen.append(original(L, g, sub))
        return seen[-1]

    monkeypatch.setattr(gla_chunk, "_spans_within_limit", spy)
    _check_against_reference(_inputs(kind, T=50), chunk_size=16, sub_chunk_size=4)
    assert seen[: len(checks)] == checks and len(seen) == len(checks)


def test_zero_decay_is_causal_linear_attention():
    inputs = _inputs("channel", T=20)
    q, k, v = inputs["q_BTHK"], inputs["k_BTHK"], inputs["v_BTHV"]
    out, state = chunk_gla(q, k, v, torch.zeros_like(inputs["g"]), chunk_size=8)
    scores = torch.einsum("bthk,bshk->bhts", q, k).tril()
    expected = torch.einsum("bhts,bshv->bthv", scores, v)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state, torch.einsum("bthk,bthv->bhkv", k, v), rtol=1e-4, atol=1e-5)


def test_fixed_per_head_decay_is_retnets_parallel_form():
    """``o_t = sum_{s<=t} gamma^(t-s) (q_t . k_s) v_s`` with RetNet's gammas 1 - 2^(-5-h)."""
    inputs = _inputs("head", T=40)
    q, k, v = inputs["q_BTHK"], inputs["k_BTHK"], inputs["v_BTHV"]
    log_gamma = torch.log1p(-(2.0 ** (-5.0 - torch.arange(2.0))))
    out, _ = chunk_gla(q, k, v, log_gamma.expand(2, 40, 2), chunk_size=16)
    t = torch.arange(40.0)
    D = (log_gamma[:, None, None] * (t[:, None] - t[None, :])).exp() * (t[:, None] >= t[None, :])
    expected = torch.einsum("bthk,bshk,hts,bshv->bthv", q, k, D, v)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_per_head_decay_equals_per_channel_decay_with_equal_channels():
    inputs = _inputs("head", T=33)
    per_channel = {**inputs, "g": inputs["g"][..., None].expand(*inputs["q_BTHK"].shape).contiguous()}
    out_head, state_head = chunk_gla(**inputs, chunk_size=16)
    out_channel, state_channel = chunk_gla(**per_channel, chunk_size=16, sub_chunk_size=4)
    torch.testing.assert_close(out_channel, out_head, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state_channel, state_head, rtol=1e-4, atol=1e-5)


def test_bonus_of_one_without_decay_is_the_inclusive_form():
    """RWKV-6 reads S_{t-1} + u k_t v_t^T: with u = 1 and no decay that is S_t, the GLA read."""
    inputs = _inputs("bonus", T=25)
    no_decay = {**inputs, "g": torch.zeros_like(inputs["g"])}
    with_bonus, _ = chunk_gla(**{**no_decay, "u_HK": torch.ones_like(inputs["u_HK"])}, chunk_size=8)
    inclusive, _ = chunk_gla(**{k: v for k, v in no_decay.items() if k != "u_HK"}, chunk_size=8)
    torch.testing.assert_close(with_bonus, inclusive, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_step_equals_the_reference_token_by_token(kind):
    inputs = _inputs(kind, T=6)
    expected, _ = gla_ref(**inputs)
    S = inputs["initial_state"]
    for t in range(6):
        o, S = gla_step(
            inputs["q_BTHK"][:, t],
            inputs["k_BTHK"][:, t],
            inputs["v_BTHV"][:, t],
            inputs["g"][:, t],
            S,
            inputs.get("u_HK"),
        )
        torch.testing.assert_close(o, expected[:, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_decay_to_zero_forgets_everything_before(kind):
    """A log decay of -1e4 at t = 20 (in every channel): outputs from t = 21 on do not depend on the past,
    and gradients stay finite."""
    inputs = _inputs(kind, T=40)
    inputs["g"][:, 20] = -1e4
    changed = {**inputs, "v_BTHV": inputs["v_BTHV"].clone(), "initial_state": 5 * inputs["initial_state"]}
    changed["v_BTHV"][:, :20] += 1.0
    out, _ = chunk_gla(**inputs, chunk_size=16)
    out_changed, _ = chunk_gla(**changed, chunk_size=16)
    torch.testing.assert_close(out[:, 21:], out_changed[:, 21:], rtol=1e-5, atol=1e-5)
    leaves = {n: v.clone().requires_grad_(True) for n, v in inputs.items()}
    o, s = chunk_gla(**leaves, chunk_size=16)
    (o.sum() + s.sum()).backward()
    assert all(torch.isfinite(leaf.grad).all() for leaf in leaves.values())


@pytest.mark.parametrize("kind", list(MAKERS))
def test_bf16_inputs_and_autocast(kind):
    inputs = _inputs(kind, T=37)
    expected, expected_state = chunk_gla(**inputs, chunk_size=16)
    bf16 = {n: (v.bfloat16() if n in ("q_BTHK", "k_BTHK", "v_BTHV") else v) for n, v in inputs.items()}
    out, state = chunk_gla(**bf16, chunk_size=16)
    assert out.dtype == torch.bfloat16 and state.dtype == torch.float32
    assert _rel(out.float(), expected) < 3e-2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_autocast, _ = chunk_gla(**inputs, chunk_size=16)
    assert out_autocast.dtype == torch.float32
    assert _rel(out_autocast, expected) < 1e-5


def test_rejects_bad_arguments():
    inputs = _inputs("head", T=8)
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_gla(**inputs, chunk_size=0)
    with pytest.raises(ValueError, match="g must be"):
        chunk_gla(**{**inputs, "g": inputs["g"][..., None, None]})
