"""Leave-largest-out: fit without the largest runs, predict them, report |pred - actual| / actual.

Extrapolation to larger scale is the only use of a scaling law that matters here, so the
held-out set is the top of the scale (largest model size by default), not a random subset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .api import fit
from .data import Runs, as_runs
from .errors import FitDidNotConverge, LawInputError
from .isoflop import build_isoflop


def leave_largest_out(
    runs: Runs | Mapping[str, Any] | Any,
    form: str = "chinchilla",
    *,
    by: str = "params",
    rtol: float = 0.05,
    metric: str = "loss",
    band_boot: int = 0,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Hold out the runs whose `by` column ('params', 'tokens' or 'compute') is within `rtol` of
    the largest value, fit `form` on the rest and score the held-out runs.

    band_boot: bootstrap replicates for the prediction's 95% band (0: no band, the fastest); with
    a band each held-out run says whether it lies inside, and `inside_band` counts them.

    For form='isoflop' the largest compute budget is held out and the predicted N*, D* are
    scored against that budget's own parabola optimum."""
    table = as_runs(runs)
    if by not in ("params", "tokens", "compute"):
        raise LawInputError("by must be 'params', 'tokens' or 'compute'")
    fit_kwargs = {**fit_kwargs, "n_boot": band_boot, "metric": metric}
    if form == "isoflop":
        return _isoflop_holdout(table, fit_kwargs)
    final = table.final() if fit_kwargs.get("checkpoints", "final") == "final" else table
    column = getattr(final, by)
    held = column >= column.max() / (1.0 + rtol)
    if held.all() or not held.any():
        raise LawInputError(f"leave-largest-out needs runs below the largest '{by}'")
    f = fit(final.select(~held), form, **fit_kwargs)
    test = final.select(held)
    pred = f.predict(
        params=test.params, tokens=test.tokens, compute=None if f.form == "chinchilla" else test.compute
    )
    actual = test.metrics[metric]
    err = np.abs(pred.value - actual) / np.abs(actual)
    per_run = [
        {"run_id": str(r), "actual": float(a), "predicted": float(p), "abs_rel_error": float(e)}
        for r, a, p, e in zip(test.run_id, actual, pred.value, err, strict=True)
    ]
    result: dict[str, Any] = {
        "form": f.form,
        "held_out_by": by,
        "threshold": float(column.max() / (1.0 + rtol)),
        "n_train_runs": f.n_runs,
        "n_test_runs": int(held.sum()),
        "abs_rel_error_mean": float(err.mean()),
        "abs_rel_error_max": float(err.max()),
        "per_run": per_run,
    }
    if band_boot:
        inside = (actual >= pred.lo) & (actual <= pred.hi)
        for row, lo, hi, ok in zip(per_run, pred.lo, pred.hi, inside, strict=True):
            row.update(band95=[float(lo), float(hi)], inside_band=bool(ok))
        result["inside_band"] = int(inside.sum())
        result["train_fit_status"] = f.status
    return result


# The two extrapolations a study is built for: to a larger model, and to a longer run.
BACKTEST_HOLDOUTS = {"largest_size": "params", "largest_budget": "tokens"}
BACKTEST_BOOT = 200  # replicates for the held-out band: a 95% band needs ~200 to be stable to ~1%


def backtest(
    runs: Runs | Mapping[str, Any] | Any,
    form: str = "chinchilla",
    *,
    band_boot: int = BACKTEST_BOOT,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Leave-largest-size-out and leave-largest-budget-out, each with the held-out runs scored
    against the reduced fit's 95% band. A hold-out the data cannot support (e.g. one budget only)
    reports its reason under "error" instead of failing the whole backtest."""
    out: dict[str, Any] = {}
    for key, by in BACKTEST_HOLDOUTS.items():
        try:
            out[key] = leave_largest_out(runs, form, by=by, band_boot=band_boot, **fit_kwargs)
        except (LawInputError, FitDidNotConverge) as exc:
            out[key] = {"held_out_by": by, "error": str(exc)}
    return out


def _isoflop_holdout(table: Runs, fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    final = table.final()
    y = final.metric(fit_kwargs["metric"])
    rtol = fit_kwargs.get("budget_rtol", 0.05)
    task, rows, _ = build_isoflop(
        final.params, final.tokens, final.compute, y, rtol, fit_kwargs.get("isoflop_nearest")
    )
    kept = final.select(rows)
    last = task.budget_of_row == task.log_c_budget.size - 1
    log_n_opt, log_d_opt, _ = task.optima(np.ones((1, last.size)))
    f = fit(kept.select(~last), "isoflop", **fit_kwargs)
    c_last = float(np.exp(task.log_c_budget[-1]))
    pred = f.optimal([c_last])
    measured = {"N_opt": float(np.exp(log_n_opt[0, -1])), "D_opt": float(np.exp(log_d_opt[0, -1]))}
    errors = {k: abs(float(pred[k].value[0]) - v) / v for k, v in measured.items()}
    return {
        "form": "isoflop",
        "held_out_by": "compute budget",
        "held_out_compute": c_last,
        "measured": measured,
        "predicted": {k: float(pred[k].value[0]) for k in measured},
        "abs_rel_error": errors,
        "abs_rel_error_mean": float(np.mean(list(errors.values()))),
        "abs_rel_error_max": float(max(errors.values())),
    }
