"""Decode measurements: ``decode_flatness`` arithmetic on given measurements (not timings), and one
real tiny ``measure_decode`` / ``decode_sweep`` / ``measure_prefill`` run for their fields."""

from __future__ import annotations

import math

import pytest
import torch

import models
from orchestrator.efficiency import (
    DecodeMeasurement,
    decode_flatness,
    decode_sweep,
    measure_decode,
    measure_prefill,
)


def _measurement(context_len: int, tokens_per_s: float, batch: int = 1) -> DecodeMeasurement:
    return DecodeMeasurement(
        context_len=context_len,
        batch=batch,
        decode_tokens=32,
        tokens_per_s=tokens_per_s,
        state_bytes=1000,
        prefill_s=0.1,
    )


def test_flatness_is_longest_over_shortest_for_the_batch():
    measurements = [
        _measurement(2048, 90.0),
        _measurement(512, 100.0),
        _measurement(32768, 97.0),
        _measurement(512, 800.0, batch=8),  # other batches are ignored
        _measurement(32768, 200.0, batch=8),
    ]
    assert decode_flatness(measurements) == pytest.approx(0.97)
    assert decode_flatness(measurements, batch=8) == pytest.approx(0.25)


def test_flatness_averages_repeated_lengths():
    measurements = [_measurement(512, 100.0), _measurement(512, 80.0), _measurement(4096, 45.0)]
    assert decode_flatness(measurements) == pytest.approx(0.5)


def test_flatness_needs_two_lengths_and_names_the_batch():
    with pytest.raises(ValueError, match="two or more context lengths for batch=4"):
        decode_flatness([_measurement(512, 100.0, batch=4)], batch=4)
    with pytest.raises(ValueError, match="batch=1"):
        decode_flatness([_measurement(512, 100.0, batch=4), _measurement(1024, 1.0, batch=4)])


def _tiny(name: str):
    torch.manual_seed(0)
    return models.build(name, size="10k", vocab_size=37, seq_len=16).eval()


def test_measure_decode_fills_every_field():
    model = _tiny("gla")
    m = measure_decode(model, context_len=40, batch=2, decode_tokens=4, repeats=2)
    assert (m.context_len, m.batch, m.decode_tokens) == (40, 2, 4)
    assert m.tokens_per_s > 0 and math.isfinite(m.tokens_per_s)
    assert m.state_bytes == 4 * model.state_size(40)  # per sequence
    assert m.prefill_s > 0


def test_decode_sweep_covers_every_batch_and_length_and_the_kv_cache_grows():
    model = _tiny("transformer")
    sweep = decode_sweep(model, context_lens=(24, 8), batches=(1, 2), decode_tokens=2, repeats=1)
    assert [(m.batch, m.context_len) for m in sweep] == [(1, 8), (1, 24), (2, 8), (2, 24)]
    assert sweep[1].state_bytes == 3 * sweep[0].state_bytes  # the cache is linear in L, per sequence
    assert sweep[0].state_bytes == sweep[2].state_bytes


def test_measure_decode_rejects_bad_input_naming_the_field():
    with pytest.raises(ValueError, match="context_len"):
        measure_decode(_tiny("gla"), context_len=0)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward-backward"])
def test_measure_prefill_reports_tokens_per_second_per_length(backward):
    model = _tiny("retnet")
    throughput = measure_prefill(model, seq_lens=(32, 16), batch=2, repeats=1, backward=backward)
    assert sorted(throughput) == [16, 32]
    assert all(value > 0 and math.isfinite(value) for value in throughput.values())
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_tokens_per_second_is_batch_over_the_median_step():
    """With a clock that advances 0.5 s per reading (two readings per step: 0.5 s a step), every
    length's tokens/s is exactly batch / 0.5, whatever the machine is doing."""
    ticks = iter(range(10**6))

    def clock() -> float:
        return 0.5 * next(ticks)

    sweep = decode_sweep(
        _tiny("mamba"), context_lens=(8, 24), batches=(3,), decode_tokens=3, repeats=2, clock=clock
    )
    assert [m.tokens_per_s for m in sweep] == [6.0, 6.0]
    assert decode_flatness(sweep, batch=3) == 1.0
