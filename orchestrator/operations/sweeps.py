"""Sweeps and their trials: the documents of ``ceiling status --json`` and ``ceiling runs --json/--csv``."""

from __future__ import annotations

import csv
import io
from typing import Any

from orchestrator.operations.errors import BadInput, require_sweep

TRIAL_KEYS = (
    "id",
    "arch",
    "label",
    "status",
    "attempts",
    "size_target",
    "params_total",
    "params_embedding",
    "params_non_embedding",
    "state_size",
    "seq_len",
    "tokens",
    "steps_total",
    "steps_done",
    "tokens_seen",
    "flops_6nd",
    "flops_exact",
    "seed",
    "lr",
    "final_train_loss",
    "final_val_loss",
    "final_val_bpb",
    "wall_time_s",
    "diverged_step",
    "error",
    "mlflow_run_id",
    "corpus_fingerprint",
    "code_version",
    "role",
    "parent_id",
)


def trial_dict(trial: Any) -> dict[str, Any]:
    """One trial's row of ``ceiling runs --json``: accounting, status and final metrics."""
    return {k: getattr(trial, k) for k in TRIAL_KEYS} | {"final_metrics": trial.final_metrics or {}}


def status_document(store: Any, sweep: str | None = None) -> dict[str, Any]:
    """``ceiling status [SWEEP] --json``: counts of trials by status, for one sweep or every sweep; for one
    sweep also its trials' progress rows (what its progress table shows, so a server's copy renders alike)."""
    require_sweep(store, sweep)
    if sweep is not None:
        from orchestrator.progress import progress_row

        trials = store.trials(sweep)
        return {
            "sweeps": [
                {
                    "name": sweep,
                    "status": store.status_counts(sweep),
                    "trials": [progress_row(t) for t in trials],
                }
            ]
        }
    return {"sweeps": [{"name": s.name, "status": store.status_counts(s.name)} for s in store.sweeps()]}


def runs_document(store: Any, sweep: str | None = None, *, evals: bool = False) -> dict[str, Any]:
    """``ceiling runs [SWEEP] --json [--evals]``: every trial's row (and its eval curve with ``evals``)."""
    require_sweep(store, sweep)
    trials = store.trials(sweep)
    rows = [trial_dict(t) for t in trials]
    if evals:
        by_trial: dict[str, list] = {}
        for row in store.evals([t.id for t in trials]):
            by_trial.setdefault(row.trial_id, []).append(
                {
                    "step": row.step,
                    "tokens_seen": row.tokens_seen,
                    "flops": row.flops,
                    "metric": row.metric,
                    "value": row.value,
                }
            )
        for row in rows:
            row["evals"] = by_trial.get(row["id"], [])
    return {"sweep": sweep, "trials": rows}


def runs_csv(store: Any, sweep: str | None = None, *, law_points: bool = False) -> str:
    """``ceiling runs [SWEEP] --csv [--law-points]``: the trial rows (or the law points) as CSV text."""
    require_sweep(store, sweep)
    if law_points:
        return law_points_csv(store, sweep)
    rows = [trial_dict(t) for t in store.trials(sweep)]
    buffer = io.StringIO()
    fields = [k for k in rows[0] if k not in ("final_metrics", "evals", "error")] if rows else ["id"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def law_points_csv(store: Any, sweep: str | None = None) -> str:
    """One row per law point (done main/branch trials), as ``ceiling fit`` reads it."""
    from orchestrator.law_points import law_point_rows, write_csv

    require_sweep(store, sweep)
    buffer = io.StringIO()
    write_csv(law_point_rows(store.trials(sweep)), buffer)
    return buffer.getvalue()


def check_runs_options(*, csv_out: bool, law_points: bool) -> None:
    if law_points and not csv_out:
        raise BadInput("--law-points goes with --csv (it writes the law-points CSV)")
