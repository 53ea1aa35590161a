"""IsoFLOP profiles to draw: per group and compute budget, the metric against model size with the
parabola in log N through it and its minimum (Hoffmann et al.'s approach 2), as plain lists.

Budgets are clustered by ``isoflop.budget_ids``, the clustering the ``isoflop`` law fit uses, so a
figure's budgets are the fit's budgets. Used by ``ceiling report`` and the dashboard; numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .isoflop import budget_ids

MIN_SIZES = 3  # a parabola needs three distinct sizes
MAX_BUDGETS = 8  # per architecture: a grid of sizes x tokens has many near-coincident budgets


@dataclass(frozen=True)
class BudgetProfile:
    group: str
    budget: float  # FLOPs, geometric mean of the budget's runs
    params: list[float]
    values: list[float]
    curve_params: list[float]  # the parabola, sampled densely over the sizes tried
    curve_values: list[float]
    params_opt: float
    value_opt: float
    interior: bool  # the vertex lies inside the sizes tried (else the best run stands in)
    n_sizes: int  # distinct model sizes at this budget


@dataclass(frozen=True)
class IsoflopProfiles:
    profiles: list[BudgetProfile]
    skipped: int  # budgets that could hold a parabola but were left out (beyond ``max_budgets``)


def isoflop_profiles(
    columns: Mapping[str, Sequence[Any]],
    metric: str,
    *,
    higher_is_better: bool = False,
    max_budgets: int = MAX_BUDGETS,
) -> list[BudgetProfile]:
    """Profiles of every budget holding >= 3 sizes; at most ``max_budgets`` per group, spread over compute."""
    return isoflop_profile_set(
        columns, metric, higher_is_better=higher_is_better, max_budgets=max_budgets
    ).profiles


def isoflop_profile_set(
    columns: Mapping[str, Sequence[Any]],
    metric: str,
    *,
    higher_is_better: bool = False,
    max_budgets: int = MAX_BUDGETS,
) -> IsoflopProfiles:
    """As :func:`isoflop_profiles`, also counting the budgets left out by ``max_budgets``."""
    out: list[BudgetProfile] = []
    skipped = 0
    groups = np.asarray(columns["group"], dtype=object)
    for group in sorted(set(groups.tolist())):
        rows = groups == group
        params = np.asarray(columns["params"], dtype=float)[rows]
        compute = np.asarray(columns["compute"], dtype=float)[rows]
        values = np.asarray(columns[metric], dtype=float)[rows]
        ids, centres = budget_ids(compute)
        eligible = [
            k
            for k in range(centres.size)
            if np.unique(np.round(np.log(params[ids == k]), 9)).size >= MIN_SIZES
        ]
        if len(eligible) > max_budgets:
            picks = np.unique(np.linspace(0, len(eligible) - 1, max_budgets).round().astype(int))
            skipped += len(eligible) - picks.size
            eligible = [eligible[i] for i in picks]
        for k in eligible:
            mine = ids == k
            out.append(_parabola(group, float(centres[k]), params[mine], values[mine], higher_is_better))
    return IsoflopProfiles(out, skipped)


def _parabola(
    group: str, budget: float, params: np.ndarray, values: np.ndarray, higher: bool
) -> BudgetProfile:
    order = np.argsort(params)
    params, values = params[order], values[order]
    log_n = np.log(params)
    c2, c1, c0 = np.polyfit(log_n, values, 2)
    opens_right_way = (c2 < 0) if higher else (c2 > 0)
    vertex = -c1 / (2 * c2) if opens_right_way and c2 != 0 else np.nan
    interior = bool(np.isfinite(vertex) and log_n.min() <= vertex <= log_n.max())
    best = int(np.argmax(values) if higher else np.argmin(values))
    dense = np.linspace(log_n.min(), log_n.max(), 40)
    return BudgetProfile(
        group=group,
        budget=budget,
        params=params.tolist(),
        values=values.tolist(),
        curve_params=np.exp(dense).tolist(),
        curve_values=np.polyval([c2, c1, c0], dense).tolist(),
        params_opt=float(np.exp(vertex) if interior else params[best]),
        value_opt=float(np.polyval([c2, c1, c0], vertex) if interior else values[best]),
        interior=interior,
        n_sizes=int(np.unique(np.round(log_n, 9)).size),
    )
