"""Recall accuracy against width and state size, from trials' final metrics. No streamlit here.

A recall study (``task:`` sweeps, ``ceiling recall``) records ``recall_accuracy`` (and per test setting
``recall_accuracy/<setting>``) plus its width and per-setting state sizes in the trial config; a
language-model trial records ``copy_score`` and has one width (d_model) and one state size. Both read
the same way here. As in Zoology (and ``ceiling recall``), each (architecture, width) keeps its best
learning rate, then seeds are averaged; of a language-model ladder's token budgets, the largest is kept
(a recall study trains every trial on the same budget).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

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


def recall_points(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One point per (architecture, width): the best learning rate's mean over seeds, and its range."""
    records = []
    for row in rows.itertuples(index=False):
        value = (row.final_metrics or {}).get(metric)
        if row.status != "done" or value is None or not math.isfinite(float(value)):
            continue
        recall = row.recall or {}
        width = recall.get("width") or row.d_model
        records.append(
            {
                "label": row.label,
                "width": float(width) if width is not None else math.nan,
                "state_size": _state_size(row, metric),
                "lr": float(row.lr),
                "seed": int(row.seed),
                "tokens": int(row.tokens),
                "value": float(value),
                "params_non_embedding": int(row.params_non_embedding),
            }
        )
    if not records:
        return pd.DataFrame(columns=POINT_COLUMNS)
    frame = pd.DataFrame.from_records(records)
    longest = frame.groupby(["label", "width"], dropna=False)["tokens"].transform("max")
    frame = frame[frame["tokens"] == longest]
    per_lr = (
        frame.groupby(["label", "width", "lr"], dropna=False)
        .agg(
            mean=("value", "mean"),
            min=("value", "min"),
            max=("value", "max"),
            n_seeds=("seed", "nunique"),
            state_size=("state_size", "median"),
            params_non_embedding=("params_non_embedding", "median"),
        )
        .reset_index()
    )
    # best learning rate per (architecture, width); ties go to the smaller lr, as in `ceiling recall`
    per_lr = per_lr.sort_values(["label", "width", "mean", "lr"], ascending=[True, True, False, True])
    best = per_lr.drop_duplicates(["label", "width"], keep="first")
    return best[POINT_COLUMNS].sort_values(["label", "width"]).reset_index(drop=True)
