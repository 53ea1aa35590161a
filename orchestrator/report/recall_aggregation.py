"""Recall results aggregated into points: the one aggregation behind ``ceiling recall``, the report's recall
figure and the dashboard's Recall page.

Zoology's protocol. Finished runs that recorded the metric are grouped by (architecture label, width); of
a group's token budgets only the largest counts (a language-model ladder trains several, a recall study
one); at that budget every learning rate is scored by its mean over seeds and the best one is kept (ties
go to the smaller lr). A point is the best lr's runs: their mean, min and max. Callers add their own
columns (state sizes, parameters, per-setting spreads) from the runs' source records.

A recall study records ``recall_accuracy`` (and ``recall_accuracy/<setting>``) and its width in the trial
config (``recall.width``); a language-model trial records ``copy_score`` and has ``model.d_model``.

Pure Python: the dashboard imports it, so no torch, ray or pandas here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import mean
from typing import Any


@dataclass(frozen=True)
class RecallRun:
    """One finished trial's value of the metric being aggregated."""

    label: str
    width: float | None  # None: the model has no width to plot against (a plug-in without d_model)
    lr: float
    seed: int
    tokens: int
    value: float
    source: Any = field(default=None, compare=False, repr=False)  # the store Trial or dashboard row


@dataclass(frozen=True)
class RecallPoint:
    """One (architecture, width) at its best learning rate and largest token budget."""

    label: str
    width: float | None
    lr: float
    runs: tuple[RecallRun, ...]  # the best lr's runs, in input order
    lr_means: dict[float, float]  # every lr's mean at that budget, by increasing lr

    @property
    def values(self) -> list[float]:
        return [run.value for run in self.runs]

    @property
    def mean(self) -> float:
        return self.lr_means[self.lr]

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def recall_width(recall: dict[str, Any] | None, d_model: Any) -> float | None:
    """A recall study's width (``recall.width``), else the model's ``d_model``; None when neither exists."""
    return (recall or {}).get("width") or d_model


def recall_run(record: Any, metric: str, width: Any) -> RecallRun | None:
    """``record``'s run for ``metric``: a store Trial or a look-alike row (label, status, lr, seed, tokens,
    final_metrics). None unless the trial is done and recorded a finite value."""
    value = (record.final_metrics or {}).get(metric)
    if record.status != "done" or value is None or not math.isfinite(float(value)):
        return None
    return RecallRun(
        label=record.label,
        width=width,
        lr=float(record.lr),
        seed=int(record.seed),
        tokens=int(record.tokens),
        value=float(value),
        source=record,
    )


def trial_width(trial: Any) -> Any:
    """A stored trial's width, from its config (see :func:`recall_width`)."""
    config = trial.config or {}
    return recall_width(config.get("recall"), (config.get("model") or {}).get("d_model"))


def trial_runs(trials: Iterable[Any], metric: str) -> list[RecallRun]:
    """The runs of stored trials (``Trial`` rows or look-alikes with a ``config``) for ``metric``."""
    runs = (recall_run(trial, metric, trial_width(trial)) for trial in trials)
    return [run for run in runs if run is not None]


def aggregate_recall(runs: Iterable[RecallRun]) -> list[RecallPoint]:
    """One point per (label, width), sorted by label then width (a missing width last)."""
    groups: dict[tuple[str, float | None], list[RecallRun]] = defaultdict(list)
    for run in runs:
        groups[(run.label, run.width)].append(run)
    points = []
    for (label, width), group in groups.items():
        largest = max(run.tokens for run in group)
        by_lr: dict[float, list[RecallRun]] = defaultdict(list)
        for run in group:
            if run.tokens == largest:
                by_lr[run.lr].append(run)
        # statistics.mean rounds correctly: `ceiling recall --json` prints these means in full
        lr_means = {lr: mean(run.value for run in by_lr[lr]) for lr in sorted(by_lr)}
        best = max(lr_means, key=lambda lr: (lr_means[lr], -lr))
        points.append(RecallPoint(label, width, best, tuple(by_lr[best]), lr_means))
    return sorted(points, key=lambda p: (p.label, p.width is None, p.width or 0.0))
