"""Bootstrap mechanics: whole runs are resampled, results are seeded and independent of n_jobs."""

from __future__ import annotations

import numpy as np
import pytest

import laws
from laws.bootstrap import percentile_interval, run_weights


def test_weights_resample_whole_runs():
    run_of_row = np.repeat(np.arange(6), [1, 3, 2, 4, 1, 5])  # checkpoints per run vary
    w = run_weights(run_of_row, n_boot=500, seed=0)
    assert w.shape == (500, run_of_row.size)
    for r in range(6):  # all checkpoints of a run share the run's draw count
        rows = run_of_row == r
        assert np.all(w[:, rows] == w[:, rows][:, :1])
    run_counts = w[:, np.searchsorted(run_of_row, np.arange(6))]
    assert np.all(run_counts.sum(axis=1) == 6)  # n_runs draws per replicate, not n_rows
    # each run is drawn ~once on average, and sometimes not at all
    assert run_counts.mean() == pytest.approx(1.0, abs=0.05)
    assert (run_counts == 0).mean() == pytest.approx((5 / 6) ** 6, abs=0.05)


def test_stratified_weights_keep_each_stratum_size():
    run_of_row = np.arange(9)
    strata = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    w = run_weights(run_of_row, n_boot=200, seed=1, strata=strata)
    for s, size in [(0, 3), (1, 4), (2, 2)]:
        assert np.all(w[:, strata == s].sum(axis=1) == size)


def test_weights_are_seeded():
    idx = np.arange(20)
    assert np.array_equal(run_weights(idx, 50, seed=3), run_weights(idx, 50, seed=3))
    assert not np.array_equal(run_weights(idx, 50, seed=3), run_weights(idx, 50, seed=4))


def test_percentile_interval_ignores_failed_replicates():
    samples = np.concatenate([np.linspace(0, 1, 101), [np.nan] * 10])[:, None]
    lo, hi = percentile_interval(samples)
    assert lo[0] == pytest.approx(0.025) and hi[0] == pytest.approx(0.975)


def test_curves_bootstrap_by_run_changes_the_interval():
    """Fitting every checkpoint but resampling runs: treating checkpoints as independent would
    give a much narrower interval, which is exactly the mistake the run bootstrap avoids."""
    rng = np.random.default_rng(0)
    rows = {"run_id": [], "params": [], "tokens": [], "loss": []}
    for i, n in enumerate(np.geomspace(1e7, 1e10, 8)):
        offset = rng.normal(0, 0.03)  # run-level noise shared by all its checkpoints
        for d in np.geomspace(1e9, 2e9, 10):
            rows["run_id"].append(f"run{i}")
            rows["params"].append(n)
            rows["tokens"].append(d)
            rows["loss"].append((1.8 + 300 * n**-0.3) * np.exp(offset + rng.normal(0, 0.001)))
    by_run = laws.fit(rows, "power_n", checkpoints="all", n_boot=100, seed=0, n_jobs=1)
    assert by_run.n_runs == 8
    rows_as_runs = dict(rows, run_id=[f"row{i}" for i in range(80)])
    by_row = laws.fit(rows_as_runs, "power_n", checkpoints="all", n_boot=100, seed=0, n_jobs=1)
    width = {k: np.diff(f.ci()["alpha"])[0] for k, f in (("run", by_run), ("row", by_row))}
    assert width["run"] > 2 * width["row"], width


def test_process_pool_gives_identical_results_to_serial():
    rng = np.random.default_rng(4)
    n = np.geomspace(1e7, 1e10, 12)
    runs = {"params": n, "tokens": 20 * n, "loss": (2 + 40 * n**-0.25) * np.exp(rng.normal(0, 0.01, 12))}
    serial = laws.fit(runs, "power_n", n_boot=16, seed=5, n_jobs=1)
    pooled = laws.fit(runs, "power_n", n_boot=16, seed=5, n_jobs=2)
    np.testing.assert_array_equal(serial.boot, pooled.boot)
    assert np.isfinite(serial.boot).all()
