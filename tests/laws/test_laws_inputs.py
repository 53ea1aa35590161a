"""Bad input raises LawInputError naming what is needed; failed optimisation raises
FitDidNotConverge instead of returning numbers."""

from __future__ import annotations

import numpy as np
import pytest

import laws
import laws.solver


def _runs(n_runs: int = 12) -> dict[str, np.ndarray]:
    n = np.geomspace(1e7, 1e10, n_runs)
    return {"params": n, "tokens": 20 * n, "loss": 2 + 40 * n**-0.25}


def test_errors_are_value_errors():
    assert issubclass(laws.LawInputError, ValueError)
    assert not issubclass(laws.FitDidNotConverge, ValueError)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("params"), "missing column 'params'"),
        (lambda r: (r.pop("tokens"),), "need column 'tokens'"),
        (lambda r: r["tokens"].__setitem__(3, 0.0), r"'tokens' must be > 0; non-positive at row 3"),
        (lambda r: r["params"].__setitem__(2, np.nan), r"'params' has NaN/inf at row 2"),
        (lambda r: r["loss"].__setitem__(5, np.nan), r"metric 'loss' has NaN/inf at row 5"),
        (lambda r: r["loss"].__setitem__(1, -1.0), r"metric 'loss' must be > 0"),
        (lambda r: r.pop("loss"), r"no metric column 'loss'"),
        (lambda r: r.__setitem__("tokens", r["tokens"][:-1]), r"'tokens' has 11 values, expected 12"),
    ],
)
def test_bad_columns_are_named(mutate, message):
    runs = _runs()
    mutate(runs)
    with pytest.raises(laws.LawInputError, match=message):
        laws.fit(runs, "power_n", n_boot=0)


def test_too_few_runs_for_a_form():
    with pytest.raises(laws.LawInputError, match=r"needs >= 8 runs; got 5"):
        laws.fit(_runs(5), "chinchilla", n_boot=0)
    with pytest.raises(laws.LawInputError, match=r"needs >= 2 distinct values of 'tokens'"):
        runs = _runs(10)
        runs["tokens"] = np.full(10, 1e9)
        laws.fit(runs, "chinchilla", n_boot=0)
    with pytest.raises(laws.LawInputError, match=r"needs >= 4 runs"):
        laws.fit(_runs(3), "power_n", n_boot=0)


def test_checkpoints_of_one_run_count_as_one_run():
    runs = _runs(12)
    runs["run_id"] = np.repeat(np.arange(3), 4)  # 3 runs, 4 checkpoints each
    runs["params"] = np.repeat(runs["params"][::4], 4)
    with pytest.raises(laws.LawInputError, match=r"needs >= 4 runs; got 3"):
        laws.fit(runs, "power_n", checkpoints="all", n_boot=0)


def test_unknown_form_and_options():
    with pytest.raises(laws.LawInputError, match="unknown form 'kaplan'"):
        laws.fit(_runs(), "kaplan", n_boot=0)
    with pytest.raises(laws.LawInputError, match="x='params'"):
        laws.fit(_runs(), "power", n_boot=0)
    with pytest.raises(laws.LawInputError, match="checkpoints"):
        laws.fit(_runs(), "power_n", checkpoints="some", n_boot=0)


def test_isoflop_and_envelope_input_requirements():
    with pytest.raises(laws.LawInputError, match="at least 2 compute budgets"):
        laws.fit(_runs(), "isoflop", n_boot=0)
    with pytest.raises(laws.LawInputError, match="training curves"):
        laws.fit(_runs(), "envelope", n_boot=0)


def test_prediction_inputs_are_checked():
    fit = laws.fit(_runs(), "power_n", n_boot=0)
    with pytest.raises(laws.LawInputError, match="params="):
        fit.predict(compute=[1e20])
    with pytest.raises(laws.LawInputError, match="compute-optimal"):
        fit.optimal([1e20])


def test_read_runs_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run_id,group,params,tokens,loss,note\na,mamba,1e8,2e9,3.1,x\nb,mamba,2e8,4e9,2.9,y\n")
    runs = laws.read_runs_csv(path)
    assert list(runs.run_id) == ["a", "b"] and list(runs.group) == ["mamba", "mamba"]
    assert runs.compute == pytest.approx(6 * runs.params * runs.tokens)
    assert set(runs.metrics) == {"loss"}
    bad = tmp_path / "bad.csv"
    bad.write_text("params,tokens,loss\n1e8,abc,3.0\n")
    with pytest.raises(laws.LawInputError, match="line 2: column 'tokens' has 'abc', not a number"):
        laws.read_runs_csv(bad)
    with pytest.raises(laws.LawInputError, match="not found"):
        laws.read_runs_csv(tmp_path / "nope.csv")


def test_non_converging_optimiser_raises(monkeypatch):
    """If no L-BFGS start ends at an acceptable optimum, the fit refuses to return numbers."""

    def stuck(fun, x0, **kwargs):
        class Result:
            x, fun, jac, status, message = (
                x0,
                1.0,
                np.ones_like(x0),
                1,
                "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
            )

        return Result()

    monkeypatch.setattr(laws.solver, "minimize", stuck)
    with pytest.raises(laws.FitDidNotConverge, match="none of 8 L-BFGS starts converged"):
        laws.fit(_runs(), "power_n", n_boot=0)


def test_runaway_parameters_are_not_converged():
    """A finite but absurd optimum (|theta| beyond the limit) is rejected, not reported."""

    class Result:
        x = np.array([2e3, 0.3, 0.5])
        fun, jac, status, message = 0.1, np.zeros(3), 0, "CONVERGENCE"

    assert not laws.solver._judge(Result(), np.ones(5)).converged


def test_concave_isoflop_profiles_do_not_converge():
    """Every budget's profile bends the wrong way: there is no optimum to fit a law through."""
    rows = {"params": [], "compute": [], "loss": []}
    for c in (1e18, 1e19, 1e20):
        for n in np.geomspace(1e7, 1e9, 5):
            rows["params"].append(n)
            rows["compute"].append(c)
            rows["loss"].append(3.0 - 0.05 * (np.log(n) - np.log(1e8)) ** 2)
    with pytest.raises(laws.FitDidNotConverge, match="interior minimum"):
        laws.fit(rows, "isoflop", n_boot=0)


def test_too_many_failed_replicates_raise(monkeypatch, chinchilla_grid):
    rng = np.random.default_rng(0)
    runs = chinchilla_grid(np.array([1.8, 400.0, 0.34, 410.0, 0.28]), rng)
    monkeypatch.setattr(laws.solver.LseReplicateFit, "fit_one", lambda self, w: None)
    with pytest.raises(laws.FitDidNotConverge, match="10 of 10 bootstrap replicates failed"):
        laws.fit(runs, "chinchilla", n_boot=10, n_jobs=1)
