"""A recall study's results: accuracy by architecture, width, state size and setting, over seeds.

Zoology's protocol, as ``ceiling recall`` reports it:

- for each (architecture, width) the learning rate with the best final accuracy (mean over test
  settings and seeds) is kept; the others are listed under ``lrs`` (the aggregation the report and the
  dashboard use too: ``orchestrator.report.recall_aggregation``);
- at that learning rate, per test setting: accuracy mean, sample standard deviation and range over
  seeds, and the recurrent state size the model holds at that setting's length (its own accounting);
- per (architecture, setting): the smallest width, and the smallest state size, whose accuracy
  reaches the threshold (0.9), or ``None`` ("not reached").

Reads the store only (no torch), like ``laws``.
"""

from __future__ import annotations

from statistics import mean, stdev
from typing import Any

from orchestrator.report.recall_aggregation import aggregate_recall, trial_runs

THRESHOLD = 0.9


class NoRecallTrials(ValueError):
    """The sweep has no recall trials (it is a language-model sweep, or unknown)."""


def _setting_names(task: dict[str, Any]) -> list[str]:
    from orchestrator.recall.planning import settings_from_config

    _, test = settings_from_config(task)
    return [s.name for s in test]


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "mean": mean(values),
        "std": stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }


def recall_study(
    trials: list[Any],
    *,
    sweep: str | None = None,
    threshold: float = THRESHOLD,
    metric: str = "recall_accuracy",
) -> dict[str, Any]:
    """The results document of one recall study from its stored trials (``Trial`` rows or look-alikes)."""
    recall = [t for t in trials if (t.config or {}).get("task")]
    if not recall:
        raise NoRecallTrials(
            f"sweep {sweep!r} has no recall trials; a recall study is a sweep with a `task:` block "
            "(see examples/recall.yaml)"
        )
    task = recall[0].config["task"]
    if metric == "recall_exact" and task["name"] != "copy":
        raise ValueError("--metric recall_exact: exact-string accuracy exists for the copy task only")
    settings = _setting_names(task)
    hardest = recall[0].config["recall"]["hardest"]

    not_done = [{"trial": t.id, "label": t.label, "status": t.status} for t in recall if t.status != "done"]
    rows: list[dict[str, Any]] = []
    for point in aggregate_recall(trial_runs(recall, metric)):
        best = [run.source for run in point.runs]
        first = best[0]
        accuracy = {}
        for name in settings:
            values = [(t.final_metrics or {}).get(f"{metric}/{name}") for t in best]
            values = [float(v) for v in values if v is not None]
            accuracy[name] = _spread(values) if values else None
        rows.append(
            {
                "arch": point.label,
                "width": point.width,
                "best_lr": point.lr,
                "params_non_embedding": first.params_non_embedding,
                "state_size": first.config["recall"]["state_sizes"],
                "accuracy": accuracy,
                "mean_accuracy": point.mean,
                "seeds": sorted(t.seed for t in best),
                "lrs": {str(lr): score for lr, score in point.lr_means.items()},
            }
        )

    reached = []
    for label in sorted({r["arch"] for r in rows}):
        mine = [r for r in rows if r["arch"] == label]
        for name in settings:
            ok = [r for r in mine if r["accuracy"][name] and r["accuracy"][name]["mean"] >= threshold]
            reached.append(
                {
                    "arch": label,
                    "setting": name,
                    "min_width": min((r["width"] for r in ok), default=None),
                    "min_state_size": min((r["state_size"][name] for r in ok), default=None),
                    "best_accuracy": max(
                        (r["accuracy"][name]["mean"] for r in mine if r["accuracy"][name]), default=None
                    ),
                }
            )
    return {
        "sweep": sweep,
        "task": task["name"],
        "metric": metric,
        "threshold": threshold,
        "settings": settings,
        "train_settings": _train_names(task),
        "hardest": hardest,
        "rows": rows,
        "reached": reached,
        "not_done": not_done,
    }


def _train_names(task: dict[str, Any]) -> list[str]:
    from orchestrator.recall.planning import settings_from_config

    train, _ = settings_from_config(task)
    return [s.name for s in train]


def recall_sweeps(store: Any) -> list[str]:
    """Names of the sweeps in the store that are recall studies."""
    return [s.name for s in store.sweeps() if (s.spec or {}).get("task")]
