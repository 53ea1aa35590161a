"""The architecture verdict on synthetic pairs whose frontier gap is known in closed form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import brentq

import laws
from laws.chinchilla import optimal

BASE = np.array([1.80, 400.0, 0.34, 410.0, 0.28])
CROSS_AT = 1e20


def _frontier(p: np.ndarray, c: float) -> float:
    return float(optimal(p, [c])["predicted"][0, 0])


@pytest.fixture(scope="module")
def crossing_pair(chinchilla_grid):
    x = _x_params()
    true_cross = np.exp(
        brentq(lambda lc: _frontier(BASE, np.exp(lc)) - _frontier(x, np.exp(lc)), np.log(1e17), np.log(1e22))
    )
    assert true_cross == pytest.approx(CROSS_AT, rel=1e-6)
    rng = np.random.default_rng(0)
    comparison = laws.compare(
        chinchilla_grid(x, rng),
        chinchilla_grid(BASE, rng),
        at_compute=1e23,
        n_boot=150,
        seed=0,
        n_jobs=1,
        name_x="X",
        name_base="T",
    )
    return comparison, true_cross


def _x_params() -> np.ndarray:
    """X: smaller reducible terms but a higher floor E, set so the frontiers cross at 1e20."""
    x = np.array([1.80, 300.0, 0.34, 250.0, 0.28])
    x[0] += _frontier(BASE, CROSS_AT) - _frontier(x, CROSS_AT)
    return x


def test_crossover_is_found_inside_its_interval(crossing_pair):
    comparison, true_cross = crossing_pair
    cross = comparison.crossover
    lo, hi = cross["ci95"]
    assert lo <= true_cross <= hi, (lo, true_cross, hi)
    assert cross["compute"] == pytest.approx(true_cross, rel=1.0)  # within a factor of 2
    assert hi / lo < 30  # an interval, not the whole range
    assert cross["fraction_of_replicates"] > 0.9


def test_crossing_pair_verdicts(crossing_pair):
    comparison, _ = crossing_pair
    for key in ("largest_measured", "target"):
        verdict = comparison.verdicts[key]
        assert verdict.kind == "crosses_over", verdict.text
        assert verdict.gap[2] < 0  # X behind beyond the crossover, significantly
    assert comparison.verdict.startswith("X vs T: crosses over at ~")
    assert comparison.verdicts["target"].compute == 1e23
    # before the crossover X is ahead, significantly
    assert comparison.advantage.lo[0] > 0


def test_gap_interval_is_of_the_difference(crossing_pair):
    comparison, _ = crossing_pair
    truth = np.array([_frontier(BASE, c) for c in comparison.compute]) - np.array(
        [_frontier(_x_params(), c) for c in comparison.compute]
    )
    inside = (comparison.advantage.lo <= truth) & (truth <= comparison.advantage.hi)
    assert inside.mean() > 0.8
    assert np.all(comparison.advantage.lo <= comparison.advantage.value)
    assert np.all(comparison.advantage.value <= comparison.advantage.hi)


def test_comparison_json_is_strict_json(crossing_pair):
    comparison, _ = crossing_pair
    obj = comparison.to_json()
    text = json.dumps(obj, allow_nan=False)
    back = json.loads(text)
    assert back["verdict"] == comparison.verdict
    assert set(back["exponent_diff"]) == {"frontier_exponent", "a"}
    assert back["crossover"]["text"].startswith("~")


def _power_c_runs(e: float, c0: float, gamma: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    c = np.geomspace(1e17, 1e21, 14)
    loss = (e + (c0 / c) ** gamma) * np.exp(rng.normal(0, 0.003, c.size))
    n = np.sqrt(c / 120.0)
    return {"params": n, "tokens": c / (6 * n), "loss": loss}


def test_growing_advantage_and_exponent_difference():
    """X: lower floor and steeper; ahead by ~0.08 at 1e17 and ~0.16 at 1e21 FLOPs."""
    rng = np.random.default_rng(5)
    x = _power_c_runs(1.6, 5e15, 0.20, rng)
    base = _power_c_runs(1.7, 1e15, 0.14, rng)
    comparison = laws.compare(x, base, form="power_c", at_compute=1e23, n_boot=100, seed=2, n_jobs=1)
    verdict = comparison.verdicts["largest_measured"]
    assert verdict.kind == "advantage_grows", verdict.text
    assert comparison.crossover["compute"] is None and comparison.crossover["text"] == "none in range"
    diff = comparison.exponent_diff["gamma"]
    assert diff.lo[0] > 0 and diff.value[0] == pytest.approx(0.06, abs=0.03)


def test_identical_architectures_are_inconclusive():
    rng = np.random.default_rng(9)
    x = _power_c_runs(1.7, 1e19, 0.15, rng)
    base = _power_c_runs(1.7, 1e19, 0.15, rng)
    comparison = laws.compare(x, base, form="power_c", n_boot=100, seed=4, n_jobs=1)
    verdict = comparison.verdicts["largest_measured"]
    assert verdict.kind == "inconclusive", verdict.text
    assert "trend inconclusive at 95%" in comparison.verdict
    assert verdict.gap[1] < 0 < verdict.gap[2]
    assert "(significant)" not in verdict.text


def test_a_constant_lead_is_significant_while_its_trend_is_inconclusive():
    """X is the baseline shifted down by 0.2 nats at every compute: the gap is clear, its trend is not."""
    rng = np.random.default_rng(9)
    x = _power_c_runs(1.5, 1e19, 0.15, rng)
    base = _power_c_runs(1.7, 1e19, 0.15, rng)
    verdict = laws.compare(x, base, form="power_c", n_boot=100, seed=4, n_jobs=1).verdicts["largest_measured"]
    assert verdict.kind == "inconclusive", verdict.text
    assert verdict.gap[1] > 0.1
    assert "ahead by" in verdict.text and "(significant)" in verdict.text


def test_higher_is_better_sign_convention():
    """Accuracy: X higher everywhere means a positive advantage for X."""
    rng = np.random.default_rng(1)
    c = np.geomspace(1e17, 1e21, 12)
    n = np.sqrt(c / 120.0)

    def runs(shortfall_scale: float) -> dict[str, np.ndarray]:
        acc = 1.0 - (0.1 + shortfall_scale * (1e18 / c) ** 0.2) * np.exp(rng.normal(0, 0.003, c.size))
        return {"params": n, "tokens": c / (6 * n), "acc": acc}

    comparison = laws.compare(
        runs(0.3),
        runs(0.5),
        form="power_c",
        metric="acc",
        metric_higher_is_better=True,
        metric_max=1.0,
        n_boot=60,
        seed=0,
        n_jobs=1,
    )
    assert np.all(comparison.advantage.value > 0)
    assert comparison.verdicts["largest_measured"].gap[1] > 0


def test_compare_rejects_mismatched_or_unbootstrapped_fits():
    rng = np.random.default_rng(2)
    runs = _power_c_runs(1.7, 1e19, 0.15, rng)
    no_boot = laws.fit(runs, "power_c", n_boot=0)
    with pytest.raises(laws.LawInputError, match="bootstrap"):
        laws.compare_fits(no_boot, no_boot)
    with pytest.raises(laws.LawInputError, match="frontier"):
        laws.compare_fits(laws.fit(runs, "power_n", n_boot=5, n_jobs=1), no_boot)
