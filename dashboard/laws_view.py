"""Fits, predictions and comparisons for the law pages, as plain frames. No streamlit here.

Fits go through ``orchestrator.store.law_inputs`` (the same runs, settings and cache as
``ceiling laws / compare``), so the dashboard shows the CLI's numbers and verdict sentences, and a fit
the CLI already made is read from the store's ``fits`` table instead of being recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import laws
from orchestrator.store import Store
from orchestrator.store.law_inputs import METRICS, fit_cached, law_runs

METRIC_LABELS = {
    "val_loss": "val loss (nats/token)",
    "val_bpb": "bits per byte",
    "copy_score": "copy score",
    "recall_accuracy": "recall accuracy",
    "train_loss": "train loss (nats/token)",
}
# law form -> the run column it is a law of (chinchilla's frontier L*(C) is a law of compute)
FORM_X = {
    "chinchilla": "compute",
    "power_c": "compute",
    "power_c_noE": "compute",
    "power_n": "params",
    "power_d": "tokens",
}
FRONTIER_FORMS = ("chinchilla", "power_c", "power_c_noE")  # what `laws.compare_fits` accepts
X_LABELS = {
    "compute": "training compute (FLOPs, 6ND)",
    "params": "non-embedding parameters",
    "tokens": "training tokens",
}


@dataclass(frozen=True)
class LawFits:
    """Per-architecture fits of one metric and form, the runs behind them and what was left out."""

    metric: str
    form: str
    runs: pd.DataFrame  # run_id, params, tokens, compute, group, value
    excluded: pd.DataFrame  # trial, label, status, reason
    fits: dict[str, laws.FitResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def higher_is_better(metric: str) -> bool:
    return METRICS.get(metric, (False, None))[0]


def fit_laws(store: Store, sweep: str | None, metric: str, form: str, n_boot: int) -> LawFits:
    """One fit per architecture; a group whose runs cannot support the form gets the reason instead."""
    runs = law_runs(store, sweep, metric=metric)
    frame = pd.DataFrame(runs.columns).rename(columns={metric: "value"})
    excluded = pd.DataFrame(runs.excluded, columns=["trial", "label", "status", "reason"])
    fits: dict[str, laws.FitResult] = {}
    errors: dict[str, str] = {}
    for group in runs.groups:
        try:
            # Same arguments as `ceiling laws`, hence the same cache key and the same numbers.
            fits[group] = fit_cached(
                store, runs.only(group), metric=metric, form=form, sweep=sweep, group=group, n_boot=n_boot
            )
        except (laws.LawInputError, laws.FitDidNotConverge) as exc:
            errors[group] = str(exc)
    return LawFits(metric, form, frame, excluded, fits, errors)


def grid(lo: float, hi: float, n: int = 80) -> np.ndarray:
    return np.geomspace(lo, hi, n)


def law_curve(fit: laws.FitResult, x: str, lo: float, hi: float, measured_hi: float) -> pd.DataFrame:
    """The fitted law with its bootstrap band over [lo, hi]; beyond the measured range it is flagged."""
    points = grid(lo, hi)
    prediction = fit.predict(**{x: points})
    return pd.DataFrame(
        {
            x: points,
            "value": prediction.value,
            "ci95_lo": prediction.lo,
            "ci95_hi": prediction.hi,
            "extrapolated": points > measured_hi * (1 + 1e-9),
        }
    )


def at_target(fit: laws.FitResult, target: float) -> dict[str, float]:
    prediction = fit.predict(compute=[target])
    return {
        "compute": target,
        "value": float(prediction.value[0]),
        "ci95_lo": float(prediction.lo[0]),
        "ci95_hi": float(prediction.hi[0]),
    }


def frontier(fit: laws.FitResult, lo: float, hi: float) -> pd.DataFrame:
    """Compute-optimal N*(C) and D*(C) with intervals (chinchilla and isoflop fits)."""
    points = grid(lo, hi, 60)
    optimal = fit.optimal(points)
    out = {"compute": points}
    for key in ("N_opt", "D_opt", "tokens_per_param"):
        if key in optimal:
            out[key] = optimal[key].value
            out[f"{key}_ci95_lo"] = optimal[key].lo
            out[f"{key}_ci95_hi"] = optimal[key].hi
    return pd.DataFrame(out)


def params_table(fits: dict[str, laws.FitResult]) -> pd.DataFrame:
    """Every fitted and derived parameter with its 95% CI, one row per (architecture, parameter)."""
    rows: list[dict[str, Any]] = []
    for group, fit in fits.items():
        document = fit.to_json()
        scalars = dict(document["params"])
        scalars.update({k: v for k, v in document["derived"].items() if isinstance(v, (int, float))})
        for name, value in scalars.items():
            lo, hi = document["ci95"].get(name, [None, None])
            rows.append(
                {
                    "architecture": group,
                    "parameter": name,
                    "value": value,
                    "ci95_lo": lo,
                    "ci95_hi": hi,
                    "n_runs": document["n_runs"],
                    "form": document["form"],
                }
            )
    return pd.DataFrame(
        rows, columns=["architecture", "parameter", "value", "ci95_lo", "ci95_hi", "n_runs", "form"]
    )


def budgets(compute: np.ndarray, rtol: float = 0.05) -> np.ndarray:
    """Cluster runs whose compute agrees within ``rtol`` into isoFLOP budgets; returns each run's budget
    (the geometric mean compute of its cluster). 6ND rarely equals a planned budget exactly."""
    log_c = np.log(np.asarray(compute, dtype=float))
    if log_c.size == 0:
        return log_c
    ids = np.empty(log_c.size, dtype=int)
    current, start = 0, log_c.min()
    for i in np.argsort(log_c, kind="stable"):
        if log_c[i] - start > np.log1p(rtol):
            current, start = current + 1, log_c[i]
        ids[i] = current
    centres = np.array([np.exp(log_c[ids == k].mean()) for k in range(current + 1)])
    return centres[ids]


MIN_SIZES = 3  # a parabola needs three distinct sizes
MAX_BUDGETS = 8  # per architecture: a planned isoFLOP sweep has a handful; a grid of sizes x tokens has
# hundreds of near-coincident budgets, which would make an unreadable (and slow) chart


@dataclass(frozen=True)
class Isoflop:
    profile: pd.DataFrame  # group, budget, params, value, kind (run | parabola)
    optima: pd.DataFrame  # group, budget, params_opt, value_opt, interior, n_sizes
    skipped: int  # budgets that could hold a parabola but were not drawn (beyond MAX_BUDGETS)


def isoflop_profiles(runs: pd.DataFrame, *, higher: bool, max_budgets: int = MAX_BUDGETS) -> Isoflop:
    """Per architecture and budget with >= 3 model sizes: the parabola in log N through the runs and its
    optimum (Hoffmann et al.'s approach 2). At most ``max_budgets`` per architecture, spread over compute."""
    curves: list[pd.DataFrame] = []
    minima: list[dict[str, Any]] = []
    skipped = 0
    for group, runs_g in runs.groupby("group", sort=True):
        budget = budgets(runs_g["compute"].to_numpy())
        sizes = (
            pd.Series(np.round(np.log(runs_g["params"].to_numpy(dtype=float)), 9)).groupby(budget).nunique()
        )
        eligible = sizes.index[sizes >= MIN_SIZES].to_numpy()
        if len(eligible) > max_budgets:
            keep = eligible[np.unique(np.linspace(0, len(eligible) - 1, max_budgets).round().astype(int))]
            skipped += len(eligible) - len(keep)
            eligible = keep
        for value in eligible:
            rows = runs_g[budget == value]
            curve, optimum = _parabola(rows, higher)
            curves += [curve.assign(group=group, budget=value), rows.assign(kind="run", budget=value)]
            minima.append({"group": group, "budget": float(value), **optimum})
    columns = ["group", "budget", "params", "value", "kind"]
    profile = (
        pd.concat([c[columns] for c in curves], ignore_index=True)
        if curves
        else pd.DataFrame(columns=columns)
    )
    optima = pd.DataFrame(
        minima, columns=["group", "budget", "params_opt", "value_opt", "interior", "n_sizes"]
    )
    return Isoflop(profile, optima, skipped)


def _parabola(rows: pd.DataFrame, higher: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The metric as a parabola in log N; its optimum is the vertex when the parabola opens towards the
    better side and the vertex lies within the sizes tried, else the best run (flagged not interior)."""
    log_n = np.log(rows["params"].to_numpy(dtype=float))
    values = rows["value"].to_numpy(dtype=float)
    c2, c1, c0 = np.polyfit(log_n, values, 2)
    opens_right_way = (c2 < 0) if higher else (c2 > 0)
    vertex = -c1 / (2 * c2) if opens_right_way and c2 != 0 else np.nan
    interior = bool(np.isfinite(vertex) and log_n.min() <= vertex <= log_n.max())
    best = int(np.argmax(values) if higher else np.argmin(values))
    dense = np.linspace(log_n.min(), log_n.max(), 40)
    curve = pd.DataFrame(
        {"params": np.exp(dense), "value": np.polyval([c2, c1, c0], dense), "kind": "parabola"}
    )
    optimum = {
        "params_opt": float(np.exp(vertex if interior else log_n[best])),
        "value_opt": float(np.polyval([c2, c1, c0], vertex) if interior else values[best]),
        "interior": interior,
        "n_sizes": int(np.unique(np.round(log_n, 9)).size),
    }
    return curve, optimum


@dataclass(frozen=True)
class Ceiling:
    """Each architecture against the baseline: the advantage curve, the crossover and the verdicts."""

    gaps: pd.DataFrame  # architecture, compute, advantage, ci95_lo, ci95_hi
    summary: pd.DataFrame  # one row per architecture: verdict texts, kinds, crossover, exponent diff
    errors: dict[str, str]


def compare_to_baseline(fits: LawFits, baseline: str, target: float | None) -> Ceiling:
    """``laws.compare_fits`` per architecture, exactly as ``ceiling compare`` calls it."""
    gaps: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for group, fit in fits.fits.items():
        if group == baseline:
            continue
        try:
            result = laws.compare_fits(
                fit, fits.fits[baseline], at_compute=target, name_x=group, name_base=baseline
            )
        except laws.LawInputError as exc:
            errors[group] = str(exc)
            continue
        gaps.append(
            pd.DataFrame(
                {
                    "architecture": group,
                    "compute": result.compute,
                    "advantage": result.advantage.value,
                    "ci95_lo": result.advantage.lo,
                    "ci95_hi": result.advantage.hi,
                }
            )
        )
        document = result.to_json()
        crossover = document["crossover"]
        row: dict[str, Any] = {
            "architecture": group,
            "baseline": baseline,
            "crossover_compute": crossover["compute"],
            "crossover_ci95_lo": crossover["ci95"][0] if crossover["ci95"] else None,
            "crossover_ci95_hi": crossover["ci95"][1] if crossover["ci95"] else None,
            "crossover_text": crossover["text"],
            "crossover_fraction": crossover["fraction_of_replicates"],
        }
        for key, verdict in result.verdicts.items():
            row[f"{key}_compute"] = verdict.compute
            row[f"{key}_kind"] = verdict.kind
            row[f"{key}_verdict"] = verdict.text
            row[f"{key}_advantage"] = verdict.gap[0]
        for name, diff in document["exponent_diff"].items():
            row[f"{name}_diff"] = diff["value"][0]
            row[f"{name}_diff_ci95_lo"] = diff["ci95"][0][0]
            row[f"{name}_diff_ci95_hi"] = diff["ci95"][1][0]
        rows.append(row)
    gap_frame = (
        pd.concat(gaps, ignore_index=True)
        if gaps
        else pd.DataFrame(columns=["architecture", "compute", "advantage", "ci95_lo", "ci95_hi"])
    )
    return Ceiling(gap_frame, pd.DataFrame(rows), errors)
