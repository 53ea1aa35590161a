"""MQAR and copy generators: answers determined by the context, everything else masked, seeds reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.recall.generators import (
    COPY_BOS,
    COPY_SEP,
    IGNORE_INDEX,
    copy_strings,
    distinct_integers,
    mqar,
    mqar_problems,
    power_law_slots,
)

MQAR_CASES = [
    pytest.param(dict(vocab_size=64, seq_len=64, kv_pairs=8, random_fillers=False), id="V64-T64-kv8-zeros"),
    pytest.param(dict(vocab_size=64, seq_len=64, kv_pairs=16, random_fillers=True), id="V64-T64-kv16-full"),
    pytest.param(dict(vocab_size=8192, seq_len=256, kv_pairs=16, random_fillers=True), id="V8192-T256-kv16"),
    pytest.param(dict(vocab_size=40, seq_len=80, kv_pairs=19, random_fillers=True), id="V40-all-keys"),
]


@pytest.mark.parametrize("settings", MQAR_CASES)
def test_mqar_answers_are_determined_by_the_context_and_all_else_is_masked(settings):
    inputs, targets = mqar(np.random.default_rng(0), 200, **settings)
    V, T, K = settings["vocab_size"], settings["seq_len"], settings["kv_pairs"]
    assert inputs.shape == targets.shape == (200, T) and inputs.dtype == targets.dtype == np.int64
    assert inputs.min() >= 0 and inputs.max() < V
    for x, y in zip(inputs, targets, strict=True):
        keys, values = x[0 : 2 * K : 2], x[1 : 2 * K : 2]
        assert len(set(keys)) == K and len(set(values)) == K  # distinct within a sequence
        assert ((1 <= keys) & (keys < V // 2)).all() and ((V // 2 <= values) & (values < V)).all()
        scored = np.flatnonzero(y != IGNORE_INDEX)
        assert len(scored) == K  # one query per key, nothing else scored
        assert (scored >= 2 * K).all() and ((scored - 2 * K) % 2 == 0).all()  # query slots after the pairs
        assert sorted(x[scored]) == sorted(keys)  # every key is asked once
        for position in scored:
            query = x[position]
            first = int(np.flatnonzero(x == query)[0])  # its first occurrence is in the pairs
            assert first < 2 * K and first % 2 == 0
            assert y[position] == x[first + 1]  # the answer: the value that followed it
    if not settings["random_fillers"]:
        fillers = np.ones_like(inputs, dtype=bool)
        fillers[:, : 2 * K] = False
        fillers[targets != IGNORE_INDEX] = False
        assert (inputs[fillers] == 0).all()


def test_mqar_seeds_reproduce_and_differ():
    kwargs = dict(vocab_size=512, seq_len=128, kv_pairs=8)
    a = mqar(np.random.default_rng([3, 1]), 16, **kwargs)
    b = mqar(np.random.default_rng([3, 1]), 16, **kwargs)
    c = mqar(np.random.default_rng([4, 1]), 16, **kwargs)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_query_gaps_follow_the_power_law():
    # sequential draws without replacement: the first slot is distributed exactly as p(g) ~ (g+1)^(a-1)
    space, power_a = 10, 0.3
    slots = power_law_slots(np.random.default_rng(0), 40_000, 3, space, power_a)
    assert all(len(set(row)) == 3 for row in slots[:500])
    p = np.arange(1, space + 1, dtype=float) ** (power_a - 1)
    p /= p.sum()
    observed = np.bincount(slots[:, 0], minlength=space) / len(slots)
    assert np.abs(observed - p).max() < 0.01
    # Zoology's default a = 0.01: queries come soon after the pairs; a = 1: uniform gaps
    near = mqar(np.random.default_rng(0), 500, vocab_size=512, seq_len=256, kv_pairs=8, power_a=0.01)[1]
    flat = mqar(np.random.default_rng(0), 500, vocab_size=512, seq_len=256, kv_pairs=8, power_a=1.0)[1]
    assert np.nonzero(near >= 0)[1].mean() + 40 < np.nonzero(flat >= 0)[1].mean()


@pytest.mark.parametrize("count,low,high", [(5, 0, 6), (8, 1, 4096), (30, 100, 140)])
def test_distinct_integers_are_distinct_and_in_range(count, low, high):
    out = distinct_integers(np.random.default_rng(1), 300, count, low, high)
    assert out.shape == (300, count) and out.min() >= low and out.max() < high
    assert all(len(set(row)) == count for row in out)


def test_copy_second_string_is_scored_and_determined_by_the_first():
    inputs, targets = copy_strings(np.random.default_rng(0), 50, alphabet=5, length=7)
    assert inputs.shape == targets.shape == (50, 15)
    assert (inputs[:, 0] == COPY_BOS).all() and (inputs[:, 8] == COPY_SEP).all()
    scored = targets != IGNORE_INDEX
    assert scored.sum(axis=1).tolist() == [7] * 50 and scored[:, 8:].all() and not scored[:, :8].any()
    assert np.array_equal(targets[:, 8:], inputs[:, 1:8])  # every answer is the character L+1 back
    assert np.array_equal(inputs[:, 9:], inputs[:, 1:7])  # teacher forcing: the copy so far is the input
    again = copy_strings(np.random.default_rng(0), 50, alphabet=5, length=7)
    assert np.array_equal(again[0], inputs)


@pytest.mark.parametrize(
    "vocab_size,seq_len,kv_pairs,expected",
    [
        (64, 64, 17, "kv_pairs: 17 pairs do not fit in seq_len 64"),
        (16, 64, 8, "vocab_size: 16 is too small for 8 kv pairs"),
        (64, 63, 4, "seq_len must be even"),
    ],
)
def test_impossible_settings_are_rejected_with_the_field(vocab_size, seq_len, kv_pairs, expected):
    assert any(expected in p for p in mqar_problems(vocab_size, seq_len, kv_pairs))
    with pytest.raises(ValueError, match=expected.split(":")[0]):
        mqar(np.random.default_rng(0), 1, vocab_size=vocab_size, seq_len=seq_len, kv_pairs=kv_pairs)
