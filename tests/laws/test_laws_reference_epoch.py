"""Approach 3 on Epoch AI's Chinchilla points reproduces the published fit and intervals."""

from __future__ import annotations

import numpy as np
import pytest

import laws

# Epoch AI (analyzing-chinchilla, data_analysis.ipynb): headline estimates and standard errors,
# and their 4000-resample bootstrap 95% intervals.
EPOCH = {
    "E": (1.817, 0.026),
    "A": (482.01, 124.5),
    "B": (2085.43, 1293.3),
    "alpha": (0.348, 0.015),
    "beta": (0.366, 0.021),
}
EPOCH_CI = {"alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
# Their plain Huber/L-BFGS fit (same objective as ours): we should land on it almost exactly.
EPOCH_HUBER = {"E": 1.8172, "A": 477.8, "alpha": 0.3473, "B": 2143.9, "beta": 0.3672}


@pytest.fixture(scope="module")
def epoch_fit(epoch_runs):
    return laws.fit(epoch_runs, "chinchilla", n_boot=200, seed=0, n_jobs=1)


def test_point_estimates_within_epoch_standard_errors(epoch_fit):
    for name, (value, se) in EPOCH.items():
        assert abs(epoch_fit.params[name] - value) <= se, (name, epoch_fit.params[name], value, se)


def test_matches_epoch_huber_fit_to_published_digits(epoch_fit):
    for name, value in EPOCH_HUBER.items():
        assert epoch_fit.params[name] == pytest.approx(value, rel=2e-3), name


def test_bootstrap_intervals_overlap_epochs_and_are_not_vacuous(epoch_fit):
    ci = epoch_fit.ci()
    for name, (lo, hi) in EPOCH_CI.items():
        ours_lo, ours_hi = ci[name]
        assert ours_lo < epoch_fit.params[name] < ours_hi
        assert ours_lo <= hi and lo <= ours_hi, (name, ci[name], (lo, hi))
        # not vacuous: our width is within a factor 2 of Epoch's
        assert 0.5 < (ours_hi - ours_lo) / (hi - lo) < 2.0, (name, ci[name])
    assert epoch_fit.settings["n_boot_failed"] == 0


def test_derived_allocation_exponents(epoch_fit):
    derived = epoch_fit.to_json()["derived"]
    a = derived["a"]
    assert a == pytest.approx(
        epoch_fit.params["beta"] / (epoch_fit.params["alpha"] + epoch_fit.params["beta"])
    )
    assert abs(a - 0.513) < 0.020  # Epoch: a = 0.513 (SE 0.020)
    assert derived["a"] + derived["b"] == pytest.approx(1.0)
    lo, hi = epoch_fit.ci()["a"]
    assert lo < a < hi
    # Chinchilla's headline: ~20 tokens per parameter around its training compute.
    (row,) = derived["at_compute"]
    assert row["compute"] == epoch_fit.max_compute
    assert 10 < row["tokens_per_param"] < 40
    assert row["ci95"]["N_opt"][0] < row["N_opt"] < row["ci95"]["N_opt"][1]


def test_optimum_is_consistent_with_the_law(epoch_fit):
    """N*(C) minimises L(N, C/6N): a denser check than trusting the closed form."""
    c = 5.76e23
    opt = epoch_fit.optimal([c])
    n = np.geomspace(opt["N_opt"].value[0] / 3, opt["N_opt"].value[0] * 3, 2001)
    losses = epoch_fit.predict(params=n, tokens=c / (6 * n)).value
    assert n[np.argmin(losses)] == pytest.approx(opt["N_opt"].value[0], rel=2e-3)
    assert losses.min() == pytest.approx(opt["predicted"].value[0], rel=1e-6)


def test_leave_largest_out_error_is_small(epoch_runs):
    report = laws.leave_largest_out(epoch_runs, "chinchilla", by="params")
    assert report["n_test_runs"] > 0 and report["n_train_runs"] + report["n_test_runs"] == 240
    # Chinchilla's law extrapolates its largest models to within a few percent.
    assert report["abs_rel_error_mean"] < 0.05
    assert all(r["abs_rel_error"] >= 0 for r in report["per_run"])
