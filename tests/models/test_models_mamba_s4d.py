"""Mamba and S4D specifics: the papers' initialisations, exact accounting, sizing from 10k to 1B (Mamba at
twice the Transformer's depth), decoding past the training length and through the FFT path, and the
optimizer groups (S4D's SSM learning rate, no weight decay on A)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import models
from models.mamba import MambaMixer
from models.s4d import S4DMixer
from orchestrator.training.loop import _param_groups

VOCAB = 29
LADDER = [round(10 ** (4 + i / 4)) for i in range(21)]  # 10k .. 1B


def _build(name: str, size: str = "20k", **overrides):
    torch.manual_seed(0)
    return models.build(name, size=size, vocab_size=VOCAB, **{"seq_len": 16, **overrides})


def test_mamba_init_follows_mamba_simple():
    model = _build("mamba", size="200k")
    mixer: MambaMixer = model.blocks[0].mixer
    config = mixer.config
    N = config.d_state
    expected_A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(config.d_inner, 1)  # S4D-real
    torch.testing.assert_close(-torch.exp(mixer.A_log.detach()), expected_A)
    dt = F.softplus(mixer.dt_proj.bias.detach().double())
    assert dt.min().item() >= 1e-3 * 0.999 and dt.max().item() <= 0.1 * 1.001
    assert dt.log().mean().item() == pytest.approx((math.log(1e-3) + math.log(0.1)) / 2, abs=0.3)
    assert mixer.dt_proj.weight.abs().max().item() <= config.dt_rank**-0.5
    assert torch.equal(mixer.D.detach(), torch.ones(config.d_inner))
    assert config.d_inner == 2 * config.d_model and config.dt_rank == math.ceil(config.d_model / 16)


def test_s4d_init_is_s4d_lin():
    model = _build("s4d", size="200k")
    ssm: S4DMixer = model.blocks[0].ssms[0]
    M = ssm.config.modes
    torch.testing.assert_close(-torch.exp(ssm.log_A_real.detach()), torch.full_like(ssm.log_A_real, -0.5))
    torch.testing.assert_close(
        ssm.A_imag.detach(), math.pi * torch.arange(M, dtype=torch.float32).expand_as(ssm.A_imag)
    )
    dt = ssm.log_dt.detach().exp()
    assert 1e-3 <= dt.min().item() and dt.max().item() <= 0.1
    assert len(model.blocks[0].ssms) == 2  # S4's wt103 layer: s4, s4, ff


@pytest.mark.parametrize("name", ["mamba", "s4d"])
@pytest.mark.parametrize("size", ["10k", "300k", "20M"])
def test_config_count_is_exact(name, size):
    config = models.resolve_config(name, size=size, vocab_size=VOCAB)
    with torch.device("meta"):
        model = models.from_config(name, config)
    assert model.num_params("non_embedding") == config.non_embedding_params()


@pytest.mark.parametrize("name", ["mamba", "s4d"])
def test_sizing_lands_within_10_percent_from_10k_to_1b(name):
    for target in LADDER:
        config = models.resolve_config(name, size=target, vocab_size=50_000)
        assert abs(config.non_embedding_params() / target - 1) < 0.10, (target, config)
        assert config.n_layers >= 2


def test_mamba_has_about_twice_the_transformers_layers():
    for target in (10**7, 10**8, 10**9):
        mamba = models.resolve_config("mamba", size=target, vocab_size=256)
        transformer = models.resolve_config("transformer", size=target, vocab_size=256)
        assert 1.6 <= mamba.n_layers / transformer.n_layers <= 2.5
        assert mamba.d_state == 16 and mamba.conv_width == 4


@pytest.mark.parametrize("name, seq_len", [("mamba", 16), ("s4d", 16), ("s4d", 8)])
def test_decoding_matches_the_training_form_past_seq_len_and_on_the_fft_path(name, seq_len):
    """Recurrent decoding has no length limit; 90 tokens also take S4D's FFT path (> 64)."""
    model = _build(name, seq_len=seq_len).eval()
    tokens_BT = torch.randint(0, VOCAB, (2, 90), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full_BTV = model(tokens_BT)
        state = model.init_state(2)
        stepped = [model.step(tokens_BT[:, t], state)[0] for t in range(tokens_BT.shape[1])]
    assert (torch.stack(stepped, dim=1) - full_BTV).abs().max().item() < 1e-4


def test_s4d_ssm_parameters_get_their_own_lr_and_no_weight_decay():
    model = _build("s4d")
    groups = _param_groups(model, weight_decay=0.1, lr=3e-3)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    ssm_group = next(g for g in groups if g["lr"] == 1e-3)  # the others keep the base 3e-3
    names = {id(p): n.rsplit(".", 1)[-1] for n, p in model.named_parameters()}
    assert {names[id(p)] for p in ssm_group["params"]} == {"log_dt", "log_A_real", "A_imag"}
    assert ssm_group["lr"] == 1e-3 and ssm_group["weight_decay"] == 0.0
    decayed = {names[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert "C" in decayed and "log_A_real" not in decayed  # C is an ordinary weight (S4)
    # a base lr below 1e-3, when the groups carry one, caps the SSM lr
    capped = model.optimizer_param_overrides(
        [{"params": list(model.parameters()), "weight_decay": 0.0, "lr": 3e-4}]
    )
    assert [g["lr"] for g in capped] == [3e-4, 3e-4]
    torch.optim.AdamW(groups, lr=3e-3)  # a valid optimizer


def test_mamba_A_log_skips_weight_decay():
    model = _build("mamba")
    groups = _param_groups(model, weight_decay=0.1, lr=3e-3)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    a_logs = {id(m.mixer.A_log) for m in model.blocks}
    for group in groups:
        if any(id(p) in a_logs for p in group["params"]):
            assert group["weight_decay"] == 0.0


@pytest.mark.parametrize("name", ["mamba", "s4d"])
def test_state_is_fp32_and_constant_in_seq_len(name):
    model = _build(name)
    assert model.state_size(16) == model.state_size(100_000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state = model.init_state(1, dtype=torch.bfloat16)
        model.step(torch.tensor([3]), state)
    tensors = [
        t
        for layer in state.layers
        for s in (layer if isinstance(layer, list) else [layer])
        for t in s.values()
    ]
    assert all(t.dtype == torch.float32 for t in tensors)
