"""The delta-rule kernels beyond the catalog comparison: continuation with a carried state, reductions to
known forms (gated linear attention, exact overwrite, gated delta rule as a special generalised one),
the strongest RWKV-7 decays at large chunks, bf16 inputs and autocast; and the two models that use them
(Gated DeltaNet, RWKV-7): step-by-step decoding equals the training form with non-trivial weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import models
from kernels.delta import (
    chunk_gated_delta_rule,
    chunk_generalized_delta_rule,
    gated_delta_rule_ref,
    generalized_delta_rule_ref,
    make_gated_delta_inputs,
    make_rwkv7_inputs,
)


def _detached(inputs: dict) -> dict:
    return {name: value.detach() for name, value in inputs.items()}


def _gdn(T=45, seed=0, **kwargs):
    return _detached(make_gated_delta_inputs(2, T, 2, torch.Generator().manual_seed(seed), **kwargs))


def _rwkv(T=45, seed=0, **kwargs):
    return _detached(make_rwkv7_inputs(2, T, 2, torch.Generator().manual_seed(seed), **kwargs))


def _time_slice(inputs: dict, start: int, stop: int | None, initial_state) -> dict:
    sliced = {name: value[:, start:stop] for name, value in inputs.items() if name != "initial_state"}
    return {**sliced, "initial_state": initial_state}


@pytest.mark.parametrize("split", [1, 16, 30], ids=lambda s: f"split{s}")
@pytest.mark.parametrize(
    "fn, make",
    [(chunk_gated_delta_rule, _gdn), (chunk_generalized_delta_rule, _rwkv)],
    ids=["gated", "generalized"],
)
def test_continuing_from_the_carried_state_equals_one_run(fn, make, split):
    inputs = make()
    whole, last = fn(**inputs, chunk_size=8)
    first, carried = fn(**_time_slice(inputs, 0, split, inputs["initial_state"]), chunk_size=8)
    second, last2 = fn(**_time_slice(inputs, split, None, carried), chunk_size=8)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last2, last, rtol=1e-5, atol=1e-5)


def test_gated_delta_with_orthogonal_keys_is_gated_linear_attention():
    """Keys orthogonal to every earlier key (and an empty initial state) leave nothing to correct:
    u_t = beta_t v_t, so o_t = sum_{j<=t} exp(G_t - G_j) (q_t . k_j) beta_j v_j."""
    inputs = _gdn(T=16, key_dim=16)
    k = torch.eye(16).expand(2, 2, 16, 16).transpose(1, 2).contiguous()  # [B, T, H, K]: k_t = e_t
    q, v, g, beta = inputs["q_BTHK"], inputs["v_BTHV"], inputs["g_BTH"], inputs["beta_BTH"]
    G = g.cumsum(1)  # [B, T, H]
    decay = (G[:, :, None] - G[:, None, :]).exp() * torch.ones(16, 16).tril()[
        None, :, :, None
    ]  # [B, t, j, H]
    scores = torch.einsum("bthk,bjhk->btjh", q, k) * decay * beta[:, None]
    expected = torch.einsum("btjh,bjhv->bthv", scores, v)
    o, _ = chunk_gated_delta_rule(q, k, v, g, beta, None, chunk_size=8)
    torch.testing.assert_close(o, expected, rtol=1e-5, atol=1e-5)


def test_delta_rule_overwrites_the_value_under_a_key():
    """No decay, beta = 1, a unit key written twice: reading it back gives the second value exactly."""
    k = F.normalize(torch.randn(1, 1, 1, 8), dim=-1).expand(1, 2, 1, 8)
    v = torch.randn(1, 2, 1, 4)
    zeros, ones = torch.zeros(1, 2, 1), torch.ones(1, 2, 1)
    o, S = chunk_gated_delta_rule(k, k, v, zeros, ones, torch.randn(1, 1, 8, 4), chunk_size=4)
    torch.testing.assert_close(o[:, 1], v[:, 1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.einsum("hk,hkv->hv", k[0, 0], S[0]), v[0, 1], rtol=1e-5, atol=1e-5)


def test_generalized_rule_without_rank_one_term_is_vector_gated_linear_attention():
    """a = b = 0: o_t = sum_{j<=t} (r_t * exp(L_t - L_j)) . k_j v_j + (r_t * exp(L_t)) . S_0."""
    inputs = _rwkv(T=20)
    inputs["a_BTHK"] = torch.zeros_like(inputs["a_BTHK"])
    inputs["b_BTHK"] = torch.zeros_like(inputs["b_BTHK"])
    r, w, k, v, S0 = (inputs[n] for n in ("r_BTHK", "w_BTHK", "k_BTHK", "v_BTHV", "initial_state"))
    L = w.cumsum(1)  # [B, T, H, K]
    causal = torch.ones(20, 20).tril()[None, :, :, None, None]
    decay = (L[:, :, None] - L[:, None, :]).clamp(max=0).exp() * causal  # [B, t, j, H, K]
    scores = torch.einsum("bthk,btjhk,bjhk->btjh", r, decay, k)
    expected = torch.einsum("btjh,bjhv->bthv", scores, v) + torch.einsum("bthk,bhkv->bthv", r * L.exp(), S0)
    o, _ = chunk_generalized_delta_rule(**inputs, chunk_size=8)
    torch.testing.assert_close(o, expected, rtol=1e-5, atol=1e-5)


def test_gated_delta_rule_is_a_generalized_delta_rule():
    """exp(g) (I - beta k k^T) = diag(exp(g)) + b a^T with a = -exp(g) k, b = beta k; write k' = beta k."""
    inputs = _gdn(T=37, key_dim=16, value_dim=16)
    q, k, v, g, beta, S0 = (
        inputs[n] for n in ("q_BTHK", "k_BTHK", "v_BTHV", "g_BTH", "beta_BTH", "initial_state")
    )
    gated, gated_state = chunk_gated_delta_rule(q, k, v, g, beta, S0, chunk_size=16)
    general, general_state = chunk_generalized_delta_rule(
        q, g[..., None].expand_as(k), beta[..., None] * k, v, -g.exp()[..., None] * k, beta[..., None] * k, S0
    )
    torch.testing.assert_close(general, gated, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(general_state, gated_state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [64, 128])
def test_strongest_rwkv7_decay_in_large_chunks_stays_finite_and_exact(chunk_size):
    """w at the soft clamp's floor (-0.6065 per step, e^-78 over 128 tokens) for every channel."""
    inputs = make_rwkv7_inputs(1, 150, 2, torch.Generator().manual_seed(3))
    inputs["w_BTHK"] = torch.full_like(inputs["w_BTHK"], -0.606531).requires_grad_()
    o, S = chunk_generalized_delta_rule(**inputs, chunk_size=chunk_size)
    (o.sum() + S.sum()).backward()
    assert all(torch.isfinite(x.grad).all() for x in inputs.values())
    expected, expected_state = generalized_delta_rule_ref(**_detached(inputs))
    torch.testing.assert_close(o, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(S, expected_state, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "fn, ref, make",
    [
        (chunk_gated_delta_rule, gated_delta_rule_ref, _gdn),
        (chunk_generalized_delta_rule, generalized_delta_rule_ref, _rwkv),
    ],
    ids=["gated", "generalized"],
)
def test_bf16_inputs_and_autocast_compute_in_fp32(fn, ref, make):
    inputs = make(T=33)
    expected, expected_state = ref(**inputs)
    low = {n: (x if n == "initial_state" else x.bfloat16()) for n, x in inputs.items()}
    o, S = fn(**low, chunk_size=16)
    assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
    torch.testing.assert_close(o.float(), expected, rtol=0.05, atol=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the kernel must not run its matmuls in bf16
        o32, S32 = fn(**inputs, chunk_size=16)
    assert o32.dtype == torch.float32
    torch.testing.assert_close(o32, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(S32, expected_state, rtol=1e-5, atol=1e-5)


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_gated_delta_rule(**_gdn(T=4), chunk_size=0)


@pytest.mark.parametrize("name", ["gated_deltanet", "rwkv7"])
def test_model_decoding_matches_training_with_random_weights(name):
    """The contract test runs at init, where RWKV-7's zero-initialised output projections hide the time
    mix; here every parameter is perturbed, lengths cross several chunks, and (RWKV-7) layer 0's
    values reach the later layers through v_first in both forms."""
    torch.manual_seed(0)
    model = models.build(name, size="20k", vocab_size=37, seq_len=40, chunk_size=8, n_layers=3).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    tokens = torch.randint(0, 37, (2, 37), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(tokens)
        state = model.init_state(2)
        stepped = []
        for t in range(tokens.shape[1]):
            logits, state = model.step(tokens[:, t], state)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, 1), full, rtol=1e-4, atol=1e-4)


def test_rwkv7_later_layers_use_layer_zero_values():
    """Zeroing layer 0's value projection changes a later layer's output only through v_first."""
    torch.manual_seed(0)
    model = models.build("rwkv7", size="20k", vocab_size=37, seq_len=16, n_layers=2).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    tokens = torch.randint(0, 37, (1, 16), generator=torch.Generator().manual_seed(2))
    x = model.embed(tokens)
    _, v_first = model.blocks[0](x, None)
    with torch.no_grad():
        y_with, _ = model.blocks[1](x, v_first)
        y_without, _ = model.blocks[1](x, torch.zeros_like(v_first))
    assert not torch.allclose(y_with, y_without)
