"""The one recall aggregation (orchestrator.report.recall_aggregation) and its three callers: `ceiling
recall` (orchestrator.recall.analysis), the report's recall figure and the dashboard's Recall page must
all show the same points. Pure Python, no store."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from dashboard.recall_view import recall_points as dashboard_points
from orchestrator.recall.analysis import recall_study
from orchestrator.report.recall_aggregation import aggregate_recall, trial_runs
from orchestrator.report.recall_points import recall_series

TASK = {"name": "mqar", "train": [{"seq_len": 32, "kv_pairs": 4}], "test": [{"seq_len": 64, "kv_pairs": 8}]}
SETTING = "T64_kv8"


def _trial(label: str, width: int, lr: float, seed: int, accuracy: float | None, **fields: Any):
    metrics = (
        None if accuracy is None else {"recall_accuracy": accuracy, f"recall_accuracy/{SETTING}": accuracy}
    )
    recall = {"width": width, "hardest": SETTING, "state_sizes": {SETTING: 10 * width}}
    values = {
        "id": f"{label}-{width}-{lr:g}-{seed}",
        "label": label,
        "status": "done",
        "lr": lr,
        "seed": seed,
        "tokens": 4096,
        "final_metrics": metrics,
        "config": {"task": TASK, "recall": recall, "model": {"d_model": width}},
        "params_non_embedding": 100 * width,
        "state_size": 10 * width,
    }
    return SimpleNamespace(**(values | fields))


def _study() -> list[SimpleNamespace]:
    """Two architectures x two widths x two lrs x two seeds, with the cases the rules decide."""
    trials = []
    for label, bonus in (("transformer", 0.2), ("hawk", 0.0)):
        for width in (16, 32):
            for lr, gain in ((1e-3, 0.0), (3e-3, 0.1)):
                for seed in (0, 1):
                    trials.append(_trial(label, width, lr, seed, 0.3 + bonus + gain + 0.05 * seed))
    trials.append(_trial("hawk", 32, 1e-2, 0, None, status="failed"))  # not done: never a point
    trials.append(_trial("hawk", 32, 1e-2, 1, math.nan))  # not finite: skipped
    # a tie between two lrs at hawk width 16 goes to the smaller lr
    trials += [
        _trial("hawk", 16, 3e-2, seed, trial.final_metrics["recall_accuracy"])
        for seed, trial in enumerate(
            t for t in trials if (t.label, t.config["recall"]["width"], t.lr) == ("hawk", 16, 3e-3)
        )
    ]
    return trials


def test_best_lr_per_width_over_seeds_ties_to_the_smaller_lr():
    points = aggregate_recall(trial_runs(_study(), "recall_accuracy"))
    assert [(p.label, p.width) for p in points] == [
        ("hawk", 16),
        ("hawk", 32),
        ("transformer", 16),
        ("transformer", 32),
    ]
    hawk16 = points[0]
    assert hawk16.lr == 3e-3 and hawk16.lr_means[3e-3] == hawk16.lr_means[3e-2]  # the tie, smaller lr kept
    assert set(points[1].lr_means) == {1e-3, 3e-3}  # the failed and the NaN trial count nowhere
    top = points[3]
    assert (
        top.lr == 3e-3
        and top.mean == pytest.approx(0.625)
        and (top.low, top.high) == (pytest.approx(0.6), pytest.approx(0.65))
    )
    assert [run.seed for run in top.runs] == [0, 1]


def test_only_the_largest_token_budget_counts_and_a_missing_width_sorts_last():
    ladder = [
        _trial("t", 64, 1e-3, 0, 0.9, tokens=1000),  # a smaller budget scores better, but is not the point
        _trial("t", 64, 1e-3, 0, 0.2, tokens=2000, id="longer"),
        _trial("t", 0, 1e-3, 0, 0.5, config={"model": {}}),  # a plug-in without d_model
    ]
    points = aggregate_recall(trial_runs(ladder, "recall_accuracy"))
    assert [(p.width, p.mean) for p in points] == [(64, 0.2), (None, 0.5)]


def test_ceiling_recall_the_report_and_the_dashboard_show_the_same_points():
    trials = _study()
    expected = [
        (p.label, float(p.width), p.lr, p.mean, p.low, p.high, len(p.runs))
        for p in aggregate_recall(trial_runs(trials, "recall_accuracy"))
    ]
    assert len(expected) == 4

    document = recall_study(trials, sweep="s")
    from_cli = [
        (
            r["arch"],
            float(r["width"]),
            r["best_lr"],
            r["mean_accuracy"],
            min(a := r["accuracy"][SETTING]["values"]),
            max(a),
            len(r["seeds"]),
        )
        for r in document["rows"]
    ]
    from_report = [
        (s.label, *point)
        for s in recall_series(trials)
        for point in zip(s.width, s.lr, s.mean, s.low, s.high, s.n_seeds, strict=True)
    ]
    rows = pd.DataFrame(
        [
            {
                "label": t.label,
                "status": t.status,
                "seed": t.seed,
                "lr": t.lr,
                "params_non_embedding": t.params_non_embedding,
                "state_size": t.state_size,
                "tokens": t.tokens,
                "final_metrics": t.final_metrics,
                "recall": t.config["recall"],
                "d_model": t.config["model"]["d_model"],
            }
            for t in trials
        ]
    )
    table = dashboard_points(rows, "recall_accuracy")
    from_dashboard = list(
        table[["label", "width", "lr", "mean", "min", "max", "n_seeds"]].itertuples(index=False, name=None)
    )
    assert from_cli == from_report == from_dashboard == expected
    assert table["state_size"].tolist() == [10.0 * w for w in (16, 32, 16, 32)]  # the setting's own state
