"""Length extrapolation past the training length: the Transformer (RoPE: rotations computed for any
position, so no index error) and a recurrent model give finite losses at 1x..8x, bucketed by position."""

from __future__ import annotations

import math

import pytest
import torch

import models
from orchestrator.efficiency import evaluate_extrapolation
from orchestrator.efficiency.extrapolation import position_bucket_edges

TRAIN_LEN = 16


def _val_tokens(n: int = 600) -> torch.Tensor:
    return torch.randint(0, 37, (n,), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", ["transformer", "mamba2"])
def test_extrapolation_past_the_training_length_gives_finite_losses(name):
    torch.manual_seed(0)
    model = models.build(name, size="10k", vocab_size=37, seq_len=TRAIN_LEN).eval()
    curve = evaluate_extrapolation(model, _val_tokens(), train_len=TRAIN_LEN, max_tokens=256)
    assert curve.train_len == TRAIN_LEN
    assert curve.lengths == (16, 32, 64, 128)
    assert all(math.isfinite(loss) for loss in curve.loss)
    assert all(abs(loss - math.log(37)) < 0.5 for loss in curve.loss)  # untrained: near uniform
    assert curve.bucket_edges == (0, 2, 4, 8, 16, 32, 64, 128)
    for length in curve.lengths:
        buckets = curve.bucket_loss[length]
        assert len(buckets) == len(curve.bucket_edges) - 1
        for lo, value in zip(curve.bucket_edges[:-1], buckets, strict=True):
            assert math.isfinite(value) == (lo < length)


def test_overall_loss_is_the_mean_over_positions():
    """The overall loss weights positions equally: with buckets of sizes 2, 2, 4, 8 positions at length 16 it is
    their size-weighted mean."""
    torch.manual_seed(0)
    model = models.build("gla", size="10k", vocab_size=37, seq_len=TRAIN_LEN).eval()
    curve = evaluate_extrapolation(model, _val_tokens(), train_len=TRAIN_LEN, factors=(1,), max_tokens=64)
    sizes = (2, 2, 4, 8)  # [0, 2), [2, 4), [4, 8), [8, 16)
    weighted = sum(s * v for s, v in zip(sizes, curve.bucket_loss[16], strict=True)) / 16
    assert curve.loss[0] == pytest.approx(weighted)


def test_bucket_edges_put_an_edge_at_the_training_length():
    assert position_bucket_edges(512, 4096) == (0, 64, 128, 256, 512, 1024, 2048, 4096)
    assert position_bucket_edges(4, 8) == (0, 1, 2, 4, 8)


def test_too_few_validation_tokens_say_how_many_are_needed():
    model = models.build("gla", size="10k", vocab_size=37, seq_len=TRAIN_LEN).eval()
    with pytest.raises(ValueError, match="needs 129"):
        evaluate_extrapolation(model, _val_tokens(100), train_len=TRAIN_LEN)
