"""Mega specifics: the EMA is the paper's damped EMA convolution, chunked attention forgets the previous
chunk, decoding keeps only the current chunk, exact accounting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import models
from models.mega import DampedEMA

VOCAB = 29


def _build(**overrides):
    torch.manual_seed(0)
    return models.build("mega", size="20k", vocab_size=VOCAB, **{"seq_len": 16, **overrides})


def test_ema_equals_the_papers_convolution_form():
    """fairseq computes the EMA as x * k with k[d, t] = sum_j gamma[d,j]/sqrt(h) p beta q^t (by FFT)."""
    ema: DampedEMA = _build().blocks[0].ema
    x_BTD = torch.randn(2, 13, ema.config.d_model)
    with torch.no_grad():
        p = torch.sigmoid(ema.alpha)
        q = 1 - p * torch.sigmoid(ema.delta)
        t = torch.arange(13.0)
        kernel_DT = torch.einsum(
            "dj,djt->dt", ema.gamma * ema.config.ema_dim**-0.5 * p * ema.beta, q[..., None] ** t
        )
        lags_TT = t[:, None] - t[None, :]
        kernel_TTD = torch.where(lags_TT[..., None] >= 0, kernel_DT.T[lags_TT.clamp(min=0).long()], 0.0)
        expected = F.silu(torch.einsum("tsd,bsd->btd", kernel_TTD, x_BTD) + ema.omega * x_BTD)
        torch.testing.assert_close(ema(x_BTD), expected, rtol=1e-4, atol=1e-5)


def test_chunk_size_comes_from_seq_len_and_can_be_set():
    assert models.resolve_config("mega", size="1M", vocab_size=VOCAB, seq_len=16).chunk_size == 8
    assert models.resolve_config("mega", size="1M", vocab_size=VOCAB, seq_len=4096).chunk_size == 1024
    assert models.resolve_config("mega", size="1M", vocab_size=VOCAB, chunk_size=5).chunk_size == 5


def test_decoding_past_seq_len_keeps_only_the_current_chunk():
    model = _build(chunk_size=5, seq_len=8).eval()
    tokens_BT = torch.randint(0, VOCAB, (2, 21), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full_BTV = model(tokens_BT)
        state = model.init_state(2)
        stepped = [model.step(tokens_BT[:, t], state)[0] for t in range(tokens_BT.shape[1])]
    assert (torch.stack(stepped, 1) - full_BTV).abs().max().item() < 1e-4
    c = model.config
    held = sum(t.numel() for layer in state.layers for t in layer.values()) // 2
    assert held == model.state_size(21) == c.n_layers * (c.d_model * c.ema_dim + 5 * (c.z_dim + c.v_dim))
    assert model.state_size(5) == model.state_size(10**6)


def test_flops_formula_is_exact():
    model = _build(chunk_size=8)
    c = model.config
    n_matmul = c.n_layers * (
        c.d_model * c.v_dim + c.d_model * (2 * c.d_model + c.z_dim + c.v_dim) + c.v_dim * c.d_model
        + 2 * c.d_model * c.ffn_hidden
    )  # fmt: skip
    assert model.matmul_params() == n_matmul
    for seq_len in (4, 8, 64):
        extra = 2 * (c.z_dim + c.v_dim) * (min(seq_len, 8) + 1) + 5 * c.d_model * c.ema_dim
        assert model.flops_per_token(seq_len) == 6 * (n_matmul + c.d_model * VOCAB) + 3 * c.n_layers * extra


@pytest.mark.parametrize("overrides", [{"ema_dim": 2}, {"z_dim": 12, "v_dim": 20}, {"ffn_hidden": 40}])
def test_overrides_are_held(overrides):
    config = models.resolve_config("mega", size="100k", vocab_size=VOCAB, **overrides)
    for key, value in overrides.items():
        assert getattr(config, key) == value
    assert abs(config.non_embedding_params() / 100_000 - 1) < 0.1
