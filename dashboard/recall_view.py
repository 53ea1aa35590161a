"""Recall accuracy against width and state size, from trials' final metrics. No streamlit here.

The points come from ``orchestrator.report.recall_aggregation`` (the aggregation ``ceiling recall`` and
the report use: best learning rate per architecture and width, seeds averaged, the largest token budget);
this module only reads the dashboard's rows into runs and lays the points out as a table, adding the
state size the model holds at the metric's test setting.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

import pandas as pd

from orchestrator.report.recall_aggregation import aggregate_recall, recall_run, recall_width

RECALL_PREFIXES = ("recall_accuracy", "recall_exact", "copy_score")
POINT_COLUMNS = [
    "label",
    "width",
    "state_size",
    "lr",
    "mean",
    "min",
    "max",
    "n_seeds",
    "params_non_embedding",
]


def recall_metrics(rows: pd.DataFrame) -> list[str]:
    """Recall-like final metrics present in done trials, aggregate names first."""
    names: set[str] = set()
    for metrics in rows.loc[rows["status"] == "done", "final_metrics"]:
        names.update(k for k in (metrics or {}) if k.split("/")[0] in RECALL_PREFIXES)
    return sorted(names, key=lambda name: ("/" in name, RECALL_PREFIXES.index(name.split("/")[0]), name))


def _state_size(row: Any, metric: str) -> float:
    recall = row.recall or {}
    sizes = recall.get("state_sizes") or {}
    setting = metric.split("/", 1)[1] if "/" in metric else recall.get("hardest")
    # the state a model holds depends on the sequence length it reads: use the setting's own length
    return float(sizes.get(setting, row.state_size)) if sizes else float(row.state_size)


def _width(row: Any) -> float | None:
    width = recall_width(row.recall, row.d_model)
    # a missing d_model reads as NaN from SQL; None groups those rows together (NaN != NaN)
    return None if width is None or math.isnan(float(width)) else float(width)


def recall_points(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One point per (architecture, width): the best learning rate's mean over seeds, and its range."""
    runs = [recall_run(row, metric, _width(row)) for row in rows.itertuples(index=False)]
    points = aggregate_recall(run for run in runs if run is not None)
    if not points:
        return pd.DataFrame(columns=POINT_COLUMNS)
    records = [
        {
            "label": point.label,
            "width": math.nan if point.width is None else point.width,
            "state_size": float(median(_state_size(run.source, metric) for run in point.runs)),
            "lr": point.lr,
            "mean": point.mean,
            "min": point.low,
            "max": point.high,
            "n_seeds": len({run.seed for run in point.runs}),
            "params_non_embedding": float(median(int(run.source.params_non_embedding) for run in point.runs)),
        }
        for point in points
    ]
    return pd.DataFrame.from_records(records, columns=POINT_COLUMNS)
