"""Transformer-specific checks: exact FLOPs / state formulas, GQA decoding, init scaling, blocks."""

from __future__ import annotations

import pytest
import torch

import models
from models.blocks import RMSNorm, apply_rope, rope_cos_sin, swiglu_hidden


def _build(**overrides):
    torch.manual_seed(0)
    return models.build("transformer", size="20k", vocab_size=29, **{"seq_len": 16, **overrides})


def test_flops_formula_is_exact():
    model = _build()
    c = model.config
    per_layer_matmul = (
        c.d_model * c.head_dim * (2 * c.n_heads + 2 * c.n_kv_heads) + 3 * c.d_model * c.ffn_hidden
    )
    n_matmul = c.n_layers * per_layer_matmul
    for seq_len in (16, 1000):
        expected = 6 * (n_matmul + c.d_model * c.vocab_size) + 6 * c.n_layers * c.d_attn * (seq_len + 1)
        assert model.flops_per_token(seq_len) == expected


def test_attention_term_grows_linearly_and_6n_dominates_at_short_context():
    info = models.describe("transformer", size="100M", vocab_size=32_000, seq_len=256)
    c = info["config"]
    attention_term = 6 * c["n_layers"] * c["n_heads"] * c["head_dim"] * (256 + 1)
    assert attention_term < 0.1 * info["flops_per_token"]
    longer = models.describe("transformer", size="100M", vocab_size=32_000, seq_len=512)
    assert (
        longer["flops_per_token"] - info["flops_per_token"]
        == 6 * c["n_layers"] * c["n_heads"] * c["head_dim"] * 256
    )


def test_state_size_is_the_kv_cache():
    model = _build(n_kv_heads=1)
    c = model.config
    assert model.state_size(100) == 2 * c.n_layers * 100 * c.n_kv_heads * c.head_dim
    state = model.init_state(3)
    held = sum(t[0].numel() for layer in state.layers for t in layer.values())  # one sequence's share
    assert held == model.state_size(c.seq_len)


@pytest.mark.parametrize("n_kv_heads", [1, 2], ids=["mqa", "gqa2"])
def test_grouped_query_attention_decodes_like_training(n_kv_heads):
    model = models.build(
        "transformer", size="50k", vocab_size=29, seq_len=10, d_model=64, n_kv_heads=n_kv_heads
    )
    assert model.config.n_heads == 4 and model.config.n_kv_heads == n_kv_heads
    tokens_BT = torch.randint(0, 29, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full_BTV = model(tokens_BT)
        state = model.init_state(2)
        stepped = [model.step(tokens_BT[:, t], state)[0] for t in range(10)]
    assert (torch.stack(stepped, 1) - full_BTV).abs().max().item() < 1e-4


def test_decoding_past_seq_len_grows_the_kv_cache():
    """The cache is not capped at the training length (issue 16): stepping past seq_len grows it and
    RoPE keeps rotating, so decoding still equals the training form over the longer sequence."""
    model = _build(seq_len=2).eval()
    tokens_BT = torch.randint(0, 29, (1, 7), generator=torch.Generator().manual_seed(0))
    state = model.init_state(1)
    with torch.no_grad():
        stepped = [model.step(tokens_BT[:, t], state)[0] for t in range(7)]
        full_BTV = model(tokens_BT)
    assert state.layers[0]["k_BGSK"].shape[2] >= 7
    assert (torch.stack(stepped, 1) - full_BTV).abs().max().item() < 1e-4


def test_residual_output_projections_get_scaled_init():
    model = models.build("transformer", size="2M", vocab_size=29, n_layers=8)
    block = model.blocks[0]
    expected = 0.02 / (2 * 8) ** 0.5
    assert block.mixer.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert block.mixer.o_proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert block.mlp.down_proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert all(not name.endswith("bias") for name, _ in model.named_parameters())


def test_rope_scores_depend_only_on_relative_position():
    generator = torch.Generator().manual_seed(0)
    q_K, k_K = torch.randn(16, generator=generator), torch.randn(16, generator=generator)

    def score(q_pos: int, k_pos: int) -> float:
        cos, sin = rope_cos_sin(torch.tensor([q_pos, k_pos]), 16)
        q_rot = apply_rope(q_K.expand(1, 1, 2, 16), cos, sin)[0, 0, 0]
        k_rot = apply_rope(k_K.expand(1, 1, 2, 16), cos, sin)[0, 0, 1]
        return float(q_rot @ k_rot)

    assert score(5, 2) == pytest.approx(score(103, 100), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-4)


def test_rmsnorm_normalises_in_fp32_for_bf16_inputs():
    x = (torch.randn(2, 3, 64) * 1e3).to(torch.bfloat16)
    y = RMSNorm(64)(x)
    assert y.dtype == torch.bfloat16
    rms = y.float().pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-2)


@pytest.mark.parametrize(
    "d_model, hidden", [(16, 44), (64, 168), (4096, 11008 - 64)], ids=["16", "64", "4096"]
)
def test_swiglu_hidden_is_eight_thirds_rounded(d_model, hidden):
    assert swiglu_hidden(d_model) == hidden
