"""Recall accuracy against model width, from trials' final metrics, for the report's recall figure.

A recall study records ``recall_accuracy`` with its width in the trial config (``recall.width``); a
language-model trial records ``copy_score`` and has ``model.d_model``. As ``ceiling recall`` does, each
(architecture, width) keeps its best learning rate, then seeds are averaged (min and max kept); of a
ladder's token budgets only the largest counts. Pure Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

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


def _width(trial: Any) -> float | None:
    config = trial.config or {}
    width = (config.get("recall") or {}).get("width") or (config.get("model") or {}).get("d_model")
    return None if width is None else float(width)


def recall_series(trials: list[Any]) -> list[RecallSeries]:
    """One series per (metric, architecture) with a point per width; empty when no trial recorded recall."""
    # (metric, label, width) -> tokens -> lr -> seed values
    table: dict[tuple[str, str, float], dict[int, dict[float, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for trial in trials:
        if trial.status != "done":
            continue
        width = _width(trial)
        for metric in RECALL_METRICS:
            value = (trial.final_metrics or {}).get(metric)
            if width is None or value is None or not math.isfinite(float(value)):
                continue
            table[(metric, trial.label, width)][int(trial.tokens)][float(trial.lr)].append(float(value))
    series: dict[tuple[str, str], RecallSeries] = {}
    for (metric, label, width), by_tokens in sorted(table.items()):
        by_lr = by_tokens[max(by_tokens)]
        # best lr by mean over seeds; ties go to the smaller lr
        lr, values = min(by_lr.items(), key=lambda item: (-sum(item[1]) / len(item[1]), item[0]))
        entry = series.setdefault((metric, label), RecallSeries(metric, label, [], [], [], [], [], []))
        entry.width.append(width)
        entry.mean.append(sum(values) / len(values))
        entry.low.append(min(values))
        entry.high.append(max(values))
        entry.lr.append(lr)
        entry.n_seeds.append(len(values))
    return list(series.values())
