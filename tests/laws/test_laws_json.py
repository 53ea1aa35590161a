"""The Fit JSON contract, round trips, group fits, and the import-weight promise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import laws


@pytest.fixture(scope="module")
def two_groups(chinchilla_grid):
    rng = np.random.default_rng(0)
    a = chinchilla_grid(np.array([1.8, 400.0, 0.34, 410.0, 0.28]), rng)
    b = chinchilla_grid(np.array([1.9, 300.0, 0.30, 500.0, 0.30]), rng)
    runs = {k: np.concatenate([a[k], b[k]]) for k in a}
    runs["group"] = ["transformer"] * 35 + ["mamba"] * 35
    runs["run_id"] = [f"t{i}" for i in range(35)] + [f"m{i}" for i in range(35)]
    return runs


def test_fit_json_contract(two_groups):
    fits = laws.fit_groups(
        two_groups, "group", form="chinchilla", n_boot=30, seed=0, n_jobs=1, at_compute=[1e23]
    )
    obj = json.loads(json.dumps(fits.to_json(), allow_nan=False))
    assert list(obj["fits"]) == ["transformer", "mamba"]
    one = obj["fits"]["mamba"]
    for key in ("form", "params", "ci95", "n_runs", "runs", "derived"):
        assert key in one
    assert one["form"] == "chinchilla" and one["group"] == "mamba"
    assert list(one["params"]) == ["E", "A", "alpha", "B", "beta"]
    assert set(one["params"]) <= set(one["ci95"])
    assert {"a", "b", "frontier_exponent"} <= set(one["ci95"])
    assert one["n_runs"] == 35 and one["runs"][0] == "m0"
    for name, (lo, hi) in one["ci95"].items():
        assert lo <= hi, name
    computes = [row["compute"] for row in one["derived"]["at_compute"]]
    assert computes[-1] == 1e23 and len(computes) == 2
    row = one["derived"]["at_compute"][-1]
    assert set(row["ci95"]) == {"N_opt", "D_opt", "tokens_per_param", "predicted"}


def test_from_json_round_trip_keeps_predictions(two_groups):
    fit = laws.fit_groups(two_groups, form="chinchilla", n_boot=30, seed=0, n_jobs=1)["transformer"]
    back = laws.FitResult.from_json(json.loads(json.dumps(fit.to_json(include_bootstrap=True))))
    assert back.params == fit.params
    a, b = fit.predict(compute=[1e22]), back.predict(compute=[1e22])
    np.testing.assert_allclose([a.value, a.lo, a.hi], [b.value, b.lo, b.hi])
    no_boot = laws.FitResult.from_json(fit.to_json())
    assert no_boot.predict(compute=[1e22]).value == pytest.approx(a.value)
    assert np.isnan(no_boot.predict(compute=[1e22]).lo).all()


def test_fit_groups_rejects_unknown_group(two_groups):
    with pytest.raises(laws.LawInputError, match="groups not in runs"):
        laws.fit_groups(two_groups, groups=["rwkv"], n_boot=0)


def test_import_is_light():
    heavy = ("torch", "ray", "deepspeed", "pandas", "mlflow")
    code = f"import sys, laws; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
