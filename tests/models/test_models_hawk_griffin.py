"""Hawk and Griffin specifics: the RG-LRU init, the layer pattern, the window rule, a rolling KV cache
that decodes past the window and past seq_len, exact accounting, and sizing from 10k to 1B."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import models
from kernels.linear_scan import linear_scan_ref
from models.griffin import LocalAttention
from models.hawk import RGLRU, RecurrentBlock

VOCAB = 29


def _build(name: str, **overrides):
    torch.manual_seed(0)
    return models.build(name, size="20k", vocab_size=VOCAB, **{"seq_len": 16, **overrides})


def test_rg_lru_starts_with_a_to_the_c_uniform_in_the_paper_range():
    model = models.build("hawk", size="1M", vocab_size=VOCAB)
    lru = model.blocks[0].mixer.rg_lru
    a_c = torch.exp(lru.config.lru_c * F.logsigmoid(lru.a_logit.detach().double()))
    assert 0.9 <= a_c.min().item() and a_c.max().item() <= 0.999
    assert a_c.mean().item() == pytest.approx((0.9 + 0.999) / 2, abs=0.01)  # uniform, not area-uniform


def test_rg_lru_is_the_gated_normalised_recurrence():
    model = _build("hawk")
    lru: RGLRU = model.blocks[0].mixer.rg_lru
    x_BTR = torch.randn(2, 9, lru.config.lru_width)
    with torch.no_grad():
        r = torch.sigmoid(lru.a_gate(x_BTR))
        i = torch.sigmoid(lru.input_gate(x_BTR))
        a = torch.sigmoid(lru.a_logit) ** (lru.config.lru_c * r)  # a_t = a^(c r_t)
        expected, _ = linear_scan_ref(torch.log(a), torch.sqrt(1 - a**2) * i * x_BTR)
        torch.testing.assert_close(lru(x_BTR), expected, rtol=1e-4, atol=1e-5)


def test_griffin_has_two_recurrent_blocks_per_local_attention_block():
    model = _build("griffin", n_layers=7, d_model=32)
    kinds = ["A" if isinstance(b.mixer, LocalAttention) else "R" for b in model.blocks]
    assert "".join(kinds) == "RRARRAR"
    assert all(isinstance(b.mixer, RecurrentBlock) for b in _build("hawk", n_layers=3).blocks)
    assert models.resolve_config("griffin", size="10k", vocab_size=VOCAB).n_layers >= 3


@pytest.mark.parametrize("seq_len, window", [(16, 8), (256, 128), (2048, 1024), (8192, 1024)])
def test_window_is_half_the_context_up_to_the_papers_1024(seq_len, window):
    assert models.resolve_config("griffin", size="1M", vocab_size=VOCAB, seq_len=seq_len).window == window
    fixed = models.resolve_config("griffin", size="1M", vocab_size=VOCAB, seq_len=seq_len, window=3)
    assert fixed.window == 3


def test_griffin_decodes_past_the_window_and_past_seq_len_like_the_training_form():
    model = _build("griffin", window=4, seq_len=8).eval()
    tokens_BT = torch.randint(0, VOCAB, (2, 23), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full_BTV = model(tokens_BT)
        state = model.init_state(2)
        stepped = [model.step(tokens_BT[:, t], state)[0] for t in range(tokens_BT.shape[1])]
    assert (torch.stack(stepped, 1) - full_BTV).abs().max().item() < 1e-4


def test_griffin_state_is_bounded_by_the_window():
    model = _build("griffin", window=4)
    c = model.config
    recurrent = (c.n_layers - c.n_attention_layers) * c.conv_width * c.lru_width
    attention = c.n_attention_layers * 2 * c.window * c.head_dim
    assert model.state_size(4) == model.state_size(10_000) == recurrent + attention
    state = model.init_state(1)
    held = sum(t.numel() for layer in state.layers for t in layer.values())
    assert held == model.state_size(c.seq_len)
    hawk = _build("hawk")
    assert hawk.state_size(1) == hawk.state_size(10**6)


@pytest.mark.parametrize("name", ["hawk", "griffin"])
def test_flops_formula_is_exact(name):
    model = _build(name, **({"window": 8} if name == "griffin" else {}))
    c = model.config
    gates = 2 * c.lru_width**2 // c.n_heads
    recurrent = 3 * c.d_model * c.lru_width + gates
    attention = 2 * c.d_model**2 + 2 * c.d_model * c.head_dim if name == "griffin" else 0
    n_attention = c.n_attention_layers if name == "griffin" else 0
    n_matmul = (
        (c.n_layers - n_attention) * recurrent
        + n_attention * attention
        + c.n_layers * 3 * c.d_model * c.ffn_hidden
    )
    assert model.matmul_params() == n_matmul
    for seq_len in (4, 8, 100):
        recurrence = (c.n_layers - n_attention) * (2 * c.conv_width * c.lru_width + 2 * c.lru_width)
        keys = 2 * c.d_model * (seq_len + 1) if seq_len <= 8 else 4 * c.d_model * 8
        expected = 6 * (n_matmul + c.d_model * VOCAB) + 3 * (recurrence + n_attention * keys)
        assert model.flops_per_token(seq_len) == expected


LADDER = [10_000, 50_000, 300_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000]


@pytest.mark.parametrize("name", ["hawk", "griffin", "mega"])
@pytest.mark.parametrize("target", LADDER, ids=[models.format_size(t) for t in LADDER])
def test_sizing_lands_within_10_percent(name, target):
    config = models.resolve_config(name, size=target, vocab_size=50_000, seq_len=2048)
    assert abs(config.non_embedding_params() / target - 1) < 0.10
    if target >= 10_000_000:
        assert 32 <= config.d_model / config.n_layers <= 64


@pytest.mark.parametrize("name", ["hawk", "griffin", "mega"])
def test_analytic_count_matches_built_model(name):
    config = models.resolve_config(name, size="300k", vocab_size=VOCAB, seq_len=64)
    with torch.device("meta"):
        model = models.from_config(name, config)
    assert model.num_params("non_embedding") == config.non_embedding_params()
    assert math.isclose(model.num_params("total"), sum(p.numel() for p in model.parameters()))
