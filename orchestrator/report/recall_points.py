"""Recall accuracy against model width, for the report's recall figure: one series per (metric,
architecture) with a point per width, from ``orchestrator.report.recall_aggregation`` (the aggregation
``ceiling recall`` and the dashboard use). Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.report.recall_aggregation import aggregate_recall, trial_runs

RECALL_METRICS = ("recall_accuracy", "copy_score")  # aggregate names; per-setting ones carry a "/"


@dataclass(frozen=True)
class RecallSeries:
    metric: str
    label: str
    width: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    lr: list[float]
    n_seeds: list[int]


def recall_series(trials: list[Any]) -> list[RecallSeries]:
    """One series per (metric, architecture) with a point per width; empty when no trial recorded recall."""
    series: list[RecallSeries] = []
    for metric in sorted(RECALL_METRICS):
        runs = [run for run in trial_runs(trials, metric) if run.width is not None]  # a point needs a width
        by_label: dict[str, RecallSeries] = {}
        for point in aggregate_recall(runs):
            entry = by_label.setdefault(
                point.label, RecallSeries(metric, point.label, [], [], [], [], [], [])
            )
            entry.width.append(float(point.width))
            entry.mean.append(point.mean)
            entry.low.append(point.low)
            entry.high.append(point.high)
            entry.lr.append(point.lr)
            entry.n_seeds.append(len(point.runs))
        series += by_label.values()
    return series
