"""The model contract, checked on every registered architecture (tiny shapes, fp32 unless stated)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import models

TINY_VOCAB = 37  # odd on purpose: catches accidental vocab/width confusions
TINY_SEQ_LEN = 16


def build_tiny(name: str, **overrides):
    """A ~10k-parameter model of architecture ``name`` with a 16-token context, seeded."""
    torch.manual_seed(0)
    overrides.setdefault("seq_len", TINY_SEQ_LEN)
    return models.build(name, size="10k", vocab_size=TINY_VOCAB, **overrides)


def _tokens(batch: int = 2, length: int = 12, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, TINY_VOCAB, (batch, length), generator=generator)


def test_forward_shape_and_config(arch_name):
    model = build_tiny(arch_name)
    logits = model(_tokens())
    assert logits.shape == (2, 12, TINY_VOCAB)
    assert logits.dtype == torch.float32
    assert model.config.to_dict()["vocab_size"] == TINY_VOCAB


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_step_by_step_matches_training_form(arch_name, tie):
    model = build_tiny(arch_name, tie_embeddings=tie).eval()
    tokens_BT = _tokens(length=TINY_SEQ_LEN)
    with torch.no_grad():
        full_BTV = model(tokens_BT)
        state = model.init_state(tokens_BT.shape[0])
        stepped = []
        for t in range(tokens_BT.shape[1]):
            logits_BV, state = model.step(tokens_BT[:, t], state)
            stepped.append(logits_BV)
    assert (torch.stack(stepped, dim=1) - full_BTV).abs().max().item() < 1e-4


def test_causal(arch_name):
    model = build_tiny(arch_name).eval()
    tokens_BT = _tokens(length=12)
    changed_BT = tokens_BT.clone()
    changed_BT[:, 7] = (changed_BT[:, 7] + 1) % TINY_VOCAB
    with torch.no_grad():
        before, after = model(tokens_BT), model(changed_BT)
    assert torch.equal(before[:, :7], after[:, :7])
    assert not torch.allclose(before[:, 7:], after[:, 7:])


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_param_accounting_partitions_the_parameters(arch_name, tie):
    model = build_tiny(arch_name, tie_embeddings=tie)
    total = sum(p.numel() for p in model.parameters())
    d_model = model.config.d_model
    assert model.num_params("total") == total
    assert model.num_params("embedding") == TINY_VOCAB * d_model * (1 if tie else 2)
    assert model.num_params("embedding") + model.num_params("non_embedding") == total
    with pytest.raises(ValueError, match="kind"):
        model.num_params("everything")


def test_flops_per_token_sanity(arch_name):
    model = build_tiny(arch_name)
    six_n = 6 * (model.matmul_params() + model.config.d_model * TINY_VOCAB)
    flops = [model.flops_per_token(seq_len) for seq_len in (128, 256, 384)]
    assert all(f >= six_n for f in flops)  # 6N is the floor; the sequence term only adds
    assert flops[1] - flops[0] == flops[2] - flops[1] >= 0  # affine in seq_len
    assert model.flops_per_token() == model.flops_per_token(model.config.seq_len)
    assert model.matmul_params() <= model.num_params("non_embedding")


def test_state_size_is_positive_and_non_decreasing(arch_name):
    model = build_tiny(arch_name)
    sizes = [model.state_size(seq_len) for seq_len in (1, 16, 256)]
    assert 0 < sizes[0] <= sizes[1] <= sizes[2]


def test_tiny_model_overfits_one_batch(arch_name):
    model = build_tiny(arch_name)
    tokens_BT = _tokens(batch=4, length=TINY_SEQ_LEN, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(50):
        logits_BTV = model(tokens_BT[:, :-1])
        loss = F.cross_entropy(logits_BTV.reshape(-1, TINY_VOCAB), tokens_BT[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(float(TINY_VOCAB))).item(), rel=0.1)
    assert losses[-1] < 0.3 * losses[0]


def test_bf16_autocast_forward_is_finite(arch_name):
    model = build_tiny(arch_name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(_tokens())
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits.float()).all()


def test_same_seed_same_weights(arch_name):
    first, second = build_tiny(arch_name), build_tiny(arch_name)
    for (name, a), (_, b) in zip(first.named_parameters(), second.named_parameters(), strict=True):
        assert torch.equal(a, b), name
