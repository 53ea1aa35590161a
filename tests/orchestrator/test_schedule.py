"""Learning-rate multipliers by optimizer step (``step`` = completed steps; update number step+1)."""

from __future__ import annotations

import math

import pytest

from orchestrator.training.schedule import lr_multiplier

TOTAL, WARMUP, COOLDOWN, MIN_RATIO = 100, 10, 20, 0.1


def schedule(name: str, **changes):
    settings = {
        "total_steps": TOTAL,
        "warmup_steps": WARMUP,
        "cooldown_steps": COOLDOWN,
        "min_lr_ratio": MIN_RATIO,
    } | changes
    return lr_multiplier(name, **settings)


@pytest.mark.parametrize("name", ["wsd", "cosine", "constant"])
def test_linear_warmup_reaches_one(name: str):
    multiplier = schedule(name)
    assert [multiplier(s) for s in range(WARMUP)] == pytest.approx([(s + 1) / WARMUP for s in range(WARMUP)])
    assert multiplier(0) == pytest.approx(0.1)  # the first update is not taken at lr 0
    assert multiplier(WARMUP - 1) == 1.0
    assert multiplier(WARMUP) == pytest.approx(1.0)


def test_wsd_plateau_then_linear_cooldown_to_min():
    multiplier = schedule("wsd")
    decay_start = TOTAL - COOLDOWN
    assert all(multiplier(s) == 1.0 for s in range(WARMUP, decay_start))
    assert multiplier(decay_start) == pytest.approx(1 - (1 - MIN_RATIO) / COOLDOWN)
    assert multiplier(decay_start + 9) == pytest.approx(1 - (1 - MIN_RATIO) * 10 / COOLDOWN)
    assert multiplier(TOTAL - 1) == pytest.approx(MIN_RATIO)  # the last update runs at the floor
    assert multiplier(TOTAL + 50) == pytest.approx(MIN_RATIO)  # never below it
    cooldown = [multiplier(s) for s in range(decay_start, TOTAL)]
    assert all(a > b for a, b in zip(cooldown, cooldown[1:], strict=False))


def test_wsd_without_cooldown_stays_flat():
    multiplier = schedule("wsd", cooldown_steps=0)
    assert [multiplier(s) for s in (WARMUP, TOTAL - 1, TOTAL)] == [1.0, 1.0, 1.0]


def test_cosine_midpoint_and_end():
    multiplier = schedule("cosine")
    midpoint = WARMUP + (TOTAL - WARMUP) // 2  # progress 0.5
    assert multiplier(midpoint) == pytest.approx(MIN_RATIO + (1 - MIN_RATIO) * 0.5)
    assert multiplier(TOTAL) == pytest.approx(MIN_RATIO)
    assert multiplier(TOTAL + 10) == pytest.approx(MIN_RATIO)
    decay = [multiplier(s) for s in range(WARMUP, TOTAL + 1)]
    assert all(a > b for a, b in zip(decay, decay[1:], strict=False))
    # A quarter of the way: (1 + cos(pi/4)) / 2 of the way from the floor to the peak.
    quarter = WARMUP + (TOTAL - WARMUP) // 4
    progress = (quarter - WARMUP) / (TOTAL - WARMUP)
    assert multiplier(quarter) == pytest.approx(
        MIN_RATIO + (1 - MIN_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def test_cosine_ignores_cooldown_steps():
    a, b = schedule("cosine", cooldown_steps=0), schedule("cosine", cooldown_steps=50)
    assert [a(s) for s in range(TOTAL)] == [b(s) for s in range(TOTAL)]


def test_constant_is_flat_after_warmup():
    multiplier = schedule("constant")
    assert {multiplier(s) for s in range(WARMUP, TOTAL + 5)} == {1.0}


def test_no_warmup_starts_at_full_rate():
    for name in ("wsd", "cosine", "constant"):
        assert schedule(name, warmup_steps=0)(0) == 1.0


def test_min_lr_ratio_zero_decays_to_zero():
    assert schedule("wsd", min_lr_ratio=0.0)(TOTAL - 1) == pytest.approx(0.0)
    assert schedule("cosine", min_lr_ratio=0.0)(TOTAL) == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_names_the_field():
    with pytest.raises(ValueError) as info:
        schedule("linear")
    assert str(info.value) == "training.schedule: unknown schedule 'linear'; use wsd, cosine or constant"
