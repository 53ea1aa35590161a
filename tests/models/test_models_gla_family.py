"""RetNet, GLA, RWKV-6 and Mamba-2 beyond the shared contract tests: decoding equals the training form with
non-trivial weights, RetNet's three forms agree, Mamba-2's SSD through ``kernels.gla`` equals the plain
selective-scan recurrence, the official initialisations, and the sizing rules (ladder, paper shapes)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import models
from models.sizing import format_size

FAMILY = ["retnet", "gla", "rwkv6", "mamba2"]
VOCAB = 37


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    overrides.setdefault("seq_len", 40)
    return models.build(name, size="20k", vocab_size=VOCAB, **overrides)


@torch.no_grad()
def _perturb(model) -> None:
    """Move every parameter off its init (zero-initialised outputs would hide a wrong recurrence)."""
    generator = torch.Generator().manual_seed(7)
    for parameter in model.parameters():
        parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def _stepped(model, tokens_BT: torch.Tensor) -> torch.Tensor:
    state = model.init_state(tokens_BT.shape[0])
    logits = []
    for t in range(tokens_BT.shape[1]):
        logits_BV, state = model.step(tokens_BT[:, t], state)
        logits.append(logits_BV)
    return torch.stack(logits, dim=1)


@pytest.mark.parametrize("name", FAMILY)
def test_decoding_equals_training_form_with_perturbed_weights(name):
    """40 tokens with chunk_size 16: several chunks and a partial last one."""
    model = _tiny(name, chunk_size=16).eval()
    _perturb(model)
    tokens_BT = torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, stepped = model(tokens_BT), _stepped(model, tokens_BT)
    assert (stepped - full).abs().max().item() < 1e-4 * max(1.0, full.abs().max().item())


def test_retnet_parallel_chunkwise_and_recurrent_forms_agree():
    chunked = _tiny("retnet", chunk_size=8).eval()
    _perturb(chunked)
    parallel = models.from_config("retnet", {**chunked.config.to_dict(), "form": "parallel"}).eval()
    parallel.load_state_dict(chunked.state_dict())
    tokens_BT = torch.randint(0, VOCAB, (2, 30), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b, c = chunked(tokens_BT), parallel(tokens_BT), _stepped(parallel, tokens_BT)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-4)
    # accounting follows the form: the parallel one grows with the context, the chunkwise one is flat
    assert parallel.flops_per_token(4096) > parallel.flops_per_token(512)
    assert chunked.flops_per_token(4096) == chunked.flops_per_token(512)


def test_retnet_decays_are_the_papers():
    from models.retnet import retention_log_decay

    gammas = retention_log_decay(8).exp()
    torch.testing.assert_close(gammas, 1 - 2.0 ** (-5 - torch.arange(8.0)))


def test_mamba2_ssd_equals_the_selective_scan_recurrence():
    """The mixer's SSD via ``kernels.gla`` (C as queries, B as keys, x * dt as values, log decay dt * A)
    against the plain Mamba-2 recurrence h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T, y_t = h_t^T C_t + D x_t."""
    model = _tiny("mamba2", chunk_size=8)
    _perturb(model)
    mixer = model.blocks[0].mixer
    c = mixer.config
    x_BTD = torch.randn(2, 21, c.d_model, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z, xBC, dt = mixer.in_proj(x_BTD).split(mixer.split_sizes, dim=-1)
        conv = F.conv1d(F.pad(xBC.transpose(1, 2), (c.conv_size - 1, 0)), mixer.conv_weight, mixer.conv_bias,
                        groups=c.conv_channels).transpose(1, 2)  # fmt: skip
        xs, Bs, Cs = F.silu(conv).split([c.d_inner, c.d_state, c.d_state], dim=-1)
        xs = xs.reshape(2, 21, c.n_heads, c.head_dim)
        dts = F.softplus(dt + mixer.dt_bias)
        A = -mixer.A_log.exp()
        h = torch.zeros(2, c.n_heads, c.d_state, c.head_dim)
        ys = []
        for t in range(21):
            h = (dts[:, t] * A).exp()[..., None, None] * h + torch.einsum(
                "bh,bn,bhp->bhnp", dts[:, t], Bs[:, t], xs[:, t]
            )
            ys.append(torch.einsum("bhnp,bn->bhp", h, Cs[:, t]) + mixer.D[:, None] * xs[:, t])
        expected = mixer._output(torch.stack(ys, 1) - mixer.D[:, None] * xs, xs, z)
        torch.testing.assert_close(mixer(x_BTD), expected, rtol=1e-4, atol=1e-5)


def test_mamba2_initialisation():
    model = models.build("mamba2", size="200k", vocab_size=VOCAB)
    for block in model.blocks:
        mixer = block.mixer
        dt = F.softplus(mixer.dt_bias)
        assert 1e-3 * 0.999 <= dt.min() and dt.max() <= 0.1 * 1.001
        assert 1.0 <= mixer.A_log.exp().min() and mixer.A_log.exp().max() <= 16.0
        assert torch.equal(mixer.D, torch.ones_like(mixer.D))
        assert block.mlp is None  # Mamba layout: no MLP


def test_rwkv6_official_initialisation():
    model = models.build("rwkv6", size="200k", vocab_size=VOCAB)
    L = model.config.n_layers
    for layer_id, block in enumerate(model.blocks):
        tmix, cmix = block.tmix, block.cmix
        ratio_0_to_1 = layer_id / (L - 1)
        assert tmix.time_decay[0].item() == pytest.approx(-6.0)
        assert tmix.time_decay[-1].item() == pytest.approx(-1.0)
        assert tmix.time_faaaa.flatten()[-1].item() == pytest.approx(
            ((tmix.config.d_model % 3) - 1) * 0.1, abs=1e-6
        )
        assert tmix.time_faaaa.flatten()[0].item() == pytest.approx(ratio_0_to_1 + 0.0, abs=1e-6)
        assert tmix.maa_x[0].item() == 1.0 and tmix.maa_x[-1].item() < 1.0
        assert (
            not tmix.output.weight.any() and not cmix.value.weight.any() and not cmix.receptance.weight.any()
        )
        assert not tmix.mix_down.weight.any() and not tmix.decay_down.weight.any()
        assert tmix.ln_x_weight[0].item() == pytest.approx(((1 + layer_id) / L) ** 0.7)
        key = tmix.key.weight
        # orthogonal with gain 0.1
        torch.testing.assert_close(key @ key.T, 0.01 * torch.eye(key.shape[0]), rtol=0, atol=1e-5)


def test_gla_decay_gate_is_logsigmoid_over_16():
    model = _tiny("gla")
    mixer = model.blocks[0].mixer
    x = torch.randn(3, model.config.d_model)
    _, _, _, g = mixer._heads(x)
    expected = F.logsigmoid(mixer.gate_up(mixer.gate_down(x))) / 16
    torch.testing.assert_close(g.flatten(-2), expected)
    assert (g < 0).all()


LADDER = [round(10 ** (4 + i / 4)) for i in range(21)]  # 10k .. 1B


@pytest.mark.parametrize("name", FAMILY)
def test_sizing_ladder_within_10_percent_and_exact_counts(name):
    for target in LADDER:
        config = models.resolve_config(name, size=target, vocab_size=50_000)
        assert abs(config.non_embedding_params() / target - 1) < 0.10, (name, format_size(target))
        assert config.n_layers >= 2
    for overrides in ({}, {"tie_embeddings": True}, {"n_layers": 3}):
        config = models.resolve_config(name, size="300k", vocab_size=VOCAB, **overrides)
        with torch.device("meta"):
            model = models.from_config(name, config)
        assert model.num_params("non_embedding") == config.non_embedding_params()


def test_paper_shapes_at_scale():
    retnet = models.resolve_config("retnet", size="1.3B", vocab_size=50_000, d_model=2048)
    assert retnet.n_heads == 8 and retnet.head_dim == 256 and retnet.ffn_hidden == 2 * 2048
    gla = models.resolve_config("gla", size="1.3B", vocab_size=50_000, d_model=2048)
    assert (gla.n_heads, gla.key_dim, gla.value_dim) == (4, 1024, 2048)
    rwkv6 = models.resolve_config("rwkv6", size="1.5B", vocab_size=50_000, d_model=2048)
    assert (rwkv6.head_dim, rwkv6.ffn_hidden, rwkv6.mix_lora, rwkv6.decay_lora) == (64, 7168, 32, 64)
    mamba2 = models.resolve_config("mamba2", size="130M", vocab_size=50_000)
    assert (mamba2.head_dim, mamba2.d_state, mamba2.d_inner) == (64, 128, 2 * mamba2.d_model)
    for size in ("10M", "100M", "1B"):
        transformer_layers = models.resolve_config("transformer", size=size, vocab_size=50_000).n_layers
        mamba_layers = models.resolve_config("mamba2", size=size, vocab_size=50_000).n_layers
        assert 1.5 <= mamba_layers / transformer_layers <= 2.5, size


@pytest.mark.parametrize("name", FAMILY)
def test_bf16_training_step_is_finite(name):
    model = _tiny(name)
    _perturb(model)
    tokens_BT = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(tokens_BT[:, :-1])
    loss = F.cross_entropy(logits.float().flatten(0, 1), tokens_BT[:, 1:].flatten())
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
