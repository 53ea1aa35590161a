"""From stored trials to scaling-law fits: which runs, which metric, and a cache of fits.

Shared by `ceiling laws / predict / compare` and the dashboard, so both fit exactly the same runs.
Only ``done`` trials are fitted; failed and diverged ones are listed as excluded with the reason.
Only law points are fitted: ordinary trials and cooldown branches (each branch is its own point with
its own tokens and FLOPs). WSD trunks and learning-rate tuning trials are listed as excluded.
Fits are cached in the store's ``fits`` table keyed by a hash of their inputs (run ids, metric
values, form and settings), so they are recomputed only when new runs arrive. Imports numpy and
``laws`` (numpy/scipy) only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from orchestrator.store.repository import Store
from orchestrator.store.schema import LAW_ROLES

# Why a trial of a non-law role is left out (shown wherever excluded runs are listed).
ROLE_REASONS = {
    "trunk": "WSD trunk (constant-LR run that cooldown branches start from), not a law point",
    "tuning": "learning-rate tuning trial (short budget), not a law point",
}

# metric name -> (higher is better, best possible value); final values come from the trial row or
# its ``final_metrics``.
METRICS: dict[str, tuple[bool, float | None]] = {
    "val_loss": (False, None),
    "val_bpb": (False, None),
    "train_loss": (False, None),
    "copy_score": (True, 1.0),
    "recall_accuracy": (True, 1.0),
}


@dataclass(frozen=True)
class LawRuns:
    """Columns for ``laws`` (run_id, params, tokens, compute, group, <metric>) and what was left out."""

    columns: dict[str, list[Any]]
    metric: str
    excluded: list[dict[str, str]]

    @property
    def groups(self) -> list[str]:
        return sorted(set(self.columns["group"]))

    def only(self, group: str) -> dict[str, list[Any]]:
        keep = [i for i, g in enumerate(self.columns["group"]) if g == group]
        return {name: [values[i] for i in keep] for name, values in self.columns.items()}

    def __len__(self) -> int:
        return len(self.columns["run_id"])


def metric_direction(metric: str) -> tuple[bool, float | None] | None:
    """(higher is better, best possible value) of a known metric: the table above, or an efficiency
    study's headline metric (``decode_ms_per_token_L8192``, ...; orchestrator/store/efficiency.py)."""
    from orchestrator.store.efficiency import efficiency_metric

    return METRICS.get(metric) or efficiency_metric(metric)


def metric_value(trial: Any, metric: str) -> float | None:
    value = getattr(trial, f"final_{metric}", None)
    if value is None:
        value = (trial.final_metrics or {}).get(metric)
    return None if value is None else float(value)


def law_runs(
    store: Store,
    sweep: str | None = None,
    *,
    metric: str = "val_loss",
    arch: str | None = None,
    cost: str | None = None,
) -> LawRuns:
    """Final records of the done trials of a sweep (or of every sweep), grouped by architecture label.

    ``cost``: a final metric (e.g. ``decode_ms_per_token_L8192``) put in the ``compute`` column instead
    of training FLOPs, so a law of the metric against inference cost is fitted like any other."""
    from orchestrator.store.efficiency import METRIC_EXAMPLES

    for name in (metric, cost):
        if name is not None and metric_direction(name) is None:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}, or {METRIC_EXAMPLES}")
    columns: dict[str, list[Any]] = {
        k: [] for k in ("run_id", "params", "tokens", "compute", "group", metric)
    }
    excluded: list[dict[str, str]] = []
    for trial in store.trials(sweep):
        if arch is not None and arch not in (trial.arch, trial.label):
            continue
        role = getattr(trial, "role", None) or "main"
        if role not in LAW_ROLES:
            excluded.append(
                {
                    "trial": trial.id,
                    "label": trial.label,
                    "status": trial.status,
                    "reason": ROLE_REASONS.get(role, f"role {role}, not a law point"),
                }
            )
            continue
        if trial.status != "done":
            if trial.status in ("failed", "diverged"):
                reason = f"diverged at step {trial.diverged_step}" if trial.status == "diverged" else "failed"
                excluded.append(
                    {"trial": trial.id, "label": trial.label, "status": trial.status, "reason": reason}
                )
            continue
        value = metric_value(trial, metric)
        compute = float(trial.flops_6nd) if cost is None else metric_value(trial, cost)
        if value is None or compute is None:
            excluded.append(
                {
                    "trial": trial.id,
                    "label": trial.label,
                    "status": trial.status,
                    "reason": f"no {metric if value is None else cost} recorded",
                }
            )
            continue
        columns["run_id"].append(trial.id)
        columns["params"].append(float(trial.params_non_embedding))
        columns["tokens"].append(float(trial.tokens))
        columns["compute"].append(compute)
        columns["group"].append(trial.label)
        columns[metric].append(value)
    return LawRuns(columns, metric, excluded)


def _inputs_hash(columns: dict[str, list[Any]], settings: dict[str, Any]) -> str:
    payload = json.dumps({"columns": columns, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# Bumped when what a cached fit holds changes (2: the health block), so older entries are refitted.
FIT_CACHE_VERSION = 2


def fit_cached(
    store: Store,
    columns: dict[str, list[Any]],
    *,
    metric: str,
    form: str,
    sweep: str | None,
    group: str,
    n_boot: int = 1000,
    seed: int = 0,
    backtest: bool = False,
    **fit_kwargs: Any,
):
    """``laws.fit`` on these runs, served from the store's cache when the same inputs were fitted before.

    form "auto" fits the forms of ``laws.AUTO_ORDER`` (each cached) and returns the richest one
    whose health is not degenerate. backtest=True adds the leave-largest-size/budget-out backtest
    to the fit's health (cached as its own entry: it costs two more bootstrapped fits)."""
    import laws

    if form == laws.AUTO:
        return laws.choose_form(
            lambda f: fit_cached(
                store,
                columns,
                metric=metric,
                form=f,
                sweep=sweep,
                group=group,
                n_boot=n_boot,
                seed=seed,
                backtest=backtest,
                **fit_kwargs,
            )
        )
    higher, best = metric_direction(metric) or (False, None)
    settings = {"form": form, "metric": metric, "n_boot": n_boot, "seed": seed, **fit_kwargs}
    settings["cache_version"] = FIT_CACHE_VERSION
    if backtest:
        settings["backtest"] = True
    key = _inputs_hash(columns, settings)
    cached = store.cached_fit(key)
    if cached is not None:
        return laws.FitResult.from_json(cached)
    fit_args = dict(metric=metric, higher_is_better=higher, metric_max=best if higher else None, **fit_kwargs)
    if backtest:
        plain = fit_cached(
            store,
            columns,
            metric=metric,
            form=form,
            sweep=sweep,
            group=group,
            n_boot=n_boot,
            seed=seed,
            **fit_kwargs,
        )
        result = plain.with_backtest(laws.backtest(columns, form, seed=seed, n_jobs=1, **fit_args))
    else:
        result = laws.fit(columns, form, n_boot=n_boot, seed=seed, **fit_args)
    store.save_fit(
        inputs_hash=key,
        sweep_name=sweep,
        group=group,
        metric=metric,
        form=form,
        settings=settings,
        result=result.to_json(include_bootstrap=True),
    )
    return result


def comparable_fits(
    store: Store,
    runs: LawRuns,
    group: str,
    baseline: str,
    *,
    form: str,
    sweep: str | None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[Any, Any]:
    """(fit of group, fit of baseline) in one form, as ``laws.compare_fits`` needs. Under form "auto",
    the richest form that neither side's runs leave degenerate (each fit cached as ``ceiling laws``
    caches it). Shared by ``ceiling compare``, the report and the dashboard's ceiling test."""
    import laws

    def fit_of(name: str, law_form: str):
        return fit_cached(
            store, runs.only(name), metric=runs.metric, form=law_form, sweep=sweep, group=name,
            n_boot=n_boot, seed=seed,
        )  # fmt: skip

    if form == laws.AUTO:
        fit_x, fit_base = laws.choose_forms(lambda f: [fit_of(group, f), fit_of(baseline, f)])
    else:
        fit_x, fit_base = fit_of(group, form), fit_of(baseline, form)
    return fit_x, fit_base
