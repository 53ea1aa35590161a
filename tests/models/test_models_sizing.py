"""parse_size, the sizing rule over a 10k..10B ladder, and meta-device accounting."""

from __future__ import annotations

import math
import time

import pytest
import torch

import models
from models.sizing import format_size, search_shape

GOOD_SIZES = [
    (50_000, 50_000),
    (1e6, 1_000_000),
    ("50k", 50_000),
    ("50K", 50_000),
    ("1.2M", 1_200_000),
    ("3B", 3_000_000_000),
    ("3G", 3_000_000_000),
    ("2T", 2_000_000_000_000),
    ("1e6", 1_000_000),
    ("2.5e3k", 2_500_000),
    (" 10 k ", 10_000),
    ("1_000", 1_000),
    ("125", 125),
]


@pytest.mark.parametrize("text, expected", GOOD_SIZES, ids=[repr(t) for t, _ in GOOD_SIZES])
def test_parse_size_good(text, expected):
    assert models.parse_size(text) == expected


BAD_SIZES = ["", "abc", "-5", "0", "0.1", "1.5X", "k", "1,000", "nan", "1e6e3", None, True, [], float("inf")]


@pytest.mark.parametrize("text", BAD_SIZES, ids=[repr(t) for t in BAD_SIZES])
def test_parse_size_bad(text):
    with pytest.raises(ValueError, match="size"):
        models.parse_size(text)


@pytest.mark.parametrize("count, text", [(12_345, "12.3k"), (7_000_000_000, "7B"), (999, "999")])
def test_format_size(count, text):
    assert format_size(count) == text


LADDER = [round(10 ** (4 + i / 4)) for i in range(25)]  # 10k .. 10B, 4 points per decade


@pytest.mark.parametrize("target", LADDER, ids=[format_size(t) for t in LADDER])
def test_sizing_lands_within_10_percent(target):
    config = models.resolve_config("transformer", size=target, vocab_size=50_000)
    assert abs(config.non_embedding_params() / target - 1) < 0.10
    assert config.n_layers >= 2
    assert config.d_model == config.n_heads * config.head_dim
    assert 2 * config.d_model <= config.ffn_hidden <= 4 * config.d_model
    if target >= 10_000_000:  # big enough for the aspect-ratio rule to bind
        assert 32 <= config.d_model / config.n_layers <= 64
        assert config.head_dim == (64 if config.d_model >= 512 else 32)


def test_depth_grows_with_size():
    depths = [models.resolve_config("transformer", size=t, vocab_size=256).n_layers for t in LADDER]
    assert depths[-1] > 40 and depths[0] <= 4
    # allowed to wobble by one layer where the width grid is coarse, never by more
    assert all(later >= earlier - 1 for earlier, later in zip(depths[:-1], depths[1:], strict=True))


def test_search_shape_prefers_the_aspect_ratio_among_close_candidates():
    def count(n_layers, d_model):
        return 12 * n_layers * d_model**2

    choice = search_shape(12 * 8 * 384**2, count, widths=range(64, 4097, 64))
    assert (choice.n_layers, choice.d_model) == (8, 384)  # 384 / 8 = 48, exact size
    assert choice.rel_error(12 * 8 * 384**2) == 0


def test_describe_7b_on_meta_is_fast_and_consistent():
    models.describe("transformer", size="10k", vocab_size=32)  # warm-up: first-call torch overheads
    start = time.perf_counter()
    info = models.describe("transformer", size="7B", vocab_size=32_000, seq_len=4096)
    assert time.perf_counter() - start < 5.0
    config = info["config"]
    assert abs(info["size_rel_error"]) < 0.1
    assert (
        info["non_embedding_params"]
        == models.resolve_config(
            "transformer", size="7B", vocab_size=32_000, seq_len=4096
        ).non_embedding_params()
    )
    assert info["embedding_params"] == 2 * 32_000 * config["d_model"]  # untied by default
    assert info["total_params"] == info["embedding_params"] + info["non_embedding_params"]
    assert info["seq_len"] == config["seq_len"] == 4096
    assert info["state_size"] == 2 * config["n_layers"] * 4096 * config["n_kv_heads"] * config["head_dim"]
    assert info["flops_per_token_6n"] == 6 * info["non_embedding_params"]
    assert 1.0 < info["flops_per_token"] / info["flops_per_token_6n"] < 1.5


def test_describe_allocates_nothing():
    info = models.describe("transformer", size="3B", vocab_size=50_000)
    assert info["total_params"] > 3e9  # would be 12 GB in fp32 if it were materialised
    with torch.device("meta"):
        model = models.build("transformer", size="3B", vocab_size=50_000)
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_kv_heads": 1}, {"tie_embeddings": True}, {"ffn_hidden": 200, "n_layers": 3}],
    ids=["default", "gqa", "tied", "fixed-ffn"],
)
def test_analytic_count_matches_built_model(overrides):
    config = models.resolve_config("transformer", size="200k", vocab_size=37, **overrides)
    with torch.device("meta"):
        model = models.from_config("transformer", config)
    assert model.num_params("non_embedding") == config.non_embedding_params()
    assert math.isclose(model.num_params("total"), sum(p.numel() for p in model.parameters()))
