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
from laws.isoflop_profiles import MAX_BUDGETS, isoflop_profile_set
from orchestrator.store import Store
from orchestrator.store.law_inputs import METRICS, comparable_fits, fit_cached, law_runs

METRIC_LABELS = {
    "val_loss": "val loss (nats/token)",
    "val_bpb": "bits per byte",
    "copy_score": "copy score",
    "recall_accuracy": "recall accuracy",
    "train_loss": "train loss (nats/token)",
}
# law form -> the run column it is a law of (chinchilla's frontier L*(C) is a law of compute)
FORM_X = {
    "auto": "compute",  # auto chooses among chinchilla (drawn on its frontier), power_c, power_c_noE
    "chinchilla": "compute",
    "power_c": "compute",
    "power_c_noE": "compute",
    "power_n": "params",
    "power_d": "tokens",
}
FRONTIER_FORMS = ("auto", "chinchilla", "power_c", "power_c_noE")  # what the ceiling test offers
DEFAULT_BASELINE = "transformer"  # the architecture the others are compared with, unless one is chosen
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


def fit_laws(
    store: Store, sweep: str | None, metric: str, form: str, n_boot: int, backtest: bool = False
) -> LawFits:
    """One fit per architecture; a group whose runs cannot support the form gets the reason instead.
    backtest=True adds each fit's leave-largest-size/budget-out backtest to its health (as the report)."""
    runs = law_runs(store, sweep, metric=metric)
    frame = pd.DataFrame(runs.columns).rename(columns={metric: "value"})
    excluded = pd.DataFrame(runs.excluded, columns=["trial", "label", "status", "reason"])
    fits: dict[str, laws.FitResult] = {}
    errors: dict[str, str] = {}
    for group in runs.groups:
        try:
            # Same arguments as `ceiling laws`, hence the same cache key and the same numbers.
            fits[group] = fit_cached(
                store, runs.only(group), metric=metric, form=form, sweep=sweep, group=group, n_boot=n_boot,
                backtest=backtest,
            )  # fmt: skip
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
                    "health": fit.status,  # beside every number a fit gives
                }
            )
    return pd.DataFrame(
        rows, columns=["architecture", "parameter", "value", "ci95_lo", "ci95_hi", "n_runs", "form", "health"]
    )


@dataclass(frozen=True)
class Isoflop:
    profile: pd.DataFrame  # group, budget, params, value, kind (run | parabola)
    optima: pd.DataFrame  # group, budget, params_opt, value_opt, interior, n_sizes
    skipped: int  # budgets that could hold a parabola but were not drawn (beyond MAX_BUDGETS)


def isoflop_profiles(runs: pd.DataFrame, *, higher: bool, max_budgets: int = MAX_BUDGETS) -> Isoflop:
    """Per architecture and budget with >= 3 model sizes: the parabola in log N through the runs and its
    optimum (Hoffmann et al.'s approach 2), as ``laws.isoflop_profiles`` computes them for the report.
    At most ``max_budgets`` per architecture (a grid of sizes x tokens has hundreds of near-coincident
    budgets, which would make an unreadable and slow chart), spread over compute."""
    columns = {
        "group": runs["group"].tolist(),
        "params": runs["params"].tolist(),
        "compute": runs["compute"].tolist(),
        "value": runs["value"].tolist(),
    }
    found = isoflop_profile_set(columns, "value", higher_is_better=higher, max_budgets=max_budgets)
    frames: list[pd.DataFrame] = []
    for p in found.profiles:
        frames.append(pd.DataFrame({"params": p.curve_params, "value": p.curve_values, "kind": "parabola"}))
        frames.append(pd.DataFrame({"params": p.params, "value": p.values, "kind": "run"}))
        frames[-2:] = [f.assign(group=p.group, budget=p.budget) for f in frames[-2:]]
    profile_columns = ["group", "budget", "params", "value", "kind"]
    profile = (
        pd.concat([f[profile_columns] for f in frames], ignore_index=True)
        if frames
        else pd.DataFrame(columns=profile_columns)
    )
    optima = pd.DataFrame(
        [
            {
                "group": p.group,
                "budget": p.budget,
                "params_opt": p.params_opt,
                "value_opt": p.value_opt,
                "interior": p.interior,
                "n_sizes": p.n_sizes,
            }
            for p in found.profiles
        ],
        columns=["group", "budget", "params_opt", "value_opt", "interior", "n_sizes"],
    )
    return Isoflop(profile, optima, found.skipped)


@dataclass(frozen=True)
class Ceiling:
    """Each architecture against the baseline: the advantage curve, the crossover and the verdicts."""

    gaps: pd.DataFrame  # architecture, compute, advantage, ci95_lo, ci95_hi
    summary: pd.DataFrame  # one row per architecture: verdict texts, kinds, crossover, exponent diff
    errors: dict[str, str]


def fit_pairs(
    store: Store, sweep: str | None, metric: str, form: str, n_boot: int, baseline: str
) -> dict[str, tuple[laws.FitResult, laws.FitResult] | str]:
    """Per architecture, (its fit, the baseline's fit) in one form, as ``ceiling compare`` pairs them
    (under auto: the richest form neither side leaves degenerate); a string says why there is none."""
    runs = law_runs(store, sweep, metric=metric)
    out: dict[str, tuple[laws.FitResult, laws.FitResult] | str] = {}
    for group in runs.groups:
        if group == baseline:
            continue
        try:
            out[group] = comparable_fits(store, runs, group, baseline, form=form, sweep=sweep, n_boot=n_boot)
        except (laws.LawInputError, laws.FitDidNotConverge) as exc:
            out[group] = str(exc)
    return out


def compare_to_baseline(
    pairs: dict[str, tuple[laws.FitResult, laws.FitResult] | str], baseline: str, target: float | None
) -> Ceiling:
    """``laws.compare_fits`` per architecture, exactly as ``ceiling compare`` calls it."""
    gaps: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for group, pair in pairs.items():
        if isinstance(pair, str):
            errors[group] = pair
            continue
        try:
            result = laws.compare_fits(*pair, at_compute=target, name_x=group, name_base=baseline)
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
            "form": result.form,
            "health": pair[0].status,
            "baseline_health": pair[1].status,
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
