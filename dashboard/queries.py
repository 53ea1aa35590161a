"""SQL that aggregates in the database and returns small pandas frames. No streamlit here.

At 10,000 trials and 1,000,000 eval rows the dashboard must stay under 3 s a page, so nothing here
loads ORM objects or whole tables: counts are GROUP BYs, curves are downsampled with window functions
before they leave the database, and only the columns a page shows are selected. Every query runs on
SQLite and PostgreSQL (SQLAlchemy renders the JSON paths and integer division for each).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Float, case, cast, func, or_, select

from orchestrator.store import Eval, Store, Sweep, SweepTrial, Trial

STATUS_ORDER = ("done", "running", "pending", "failed", "diverged")
# Final metrics worth a column of their own when present (LM trials record copy_score, recall trials
# recall_accuracy); the rest stay in the final_metrics JSON.
EXTRA_FINAL_METRICS = ("copy_score", "recall_accuracy")
MAX_IDS_PER_QUERY = 500  # far below SQLite's 32766 bound parameters; keeps IN lists index-friendly


def _frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def sweep_progress(store: Store) -> pd.DataFrame:
    """One row per sweep: trial counts by status, newest sweep first."""
    with store.session() as session:
        sweeps = session.execute(select(Sweep.name, Sweep.created_at).order_by(Sweep.created_at.desc())).all()
        counts = session.execute(
            select(SweepTrial.sweep_name, Trial.status, func.count())
            .join(Trial, Trial.id == SweepTrial.trial_id)
            .group_by(SweepTrial.sweep_name, Trial.status)
        ).all()
    frame = _frame(sweeps, ["sweep", "created_at"])
    for status in STATUS_ORDER:
        frame[status] = 0
    index = {name: i for i, name in enumerate(frame["sweep"])}
    for name, status, count in counts:
        if name in index and status in STATUS_ORDER:
            frame.loc[index[name], status] = int(count)
    frame["total"] = frame[list(STATUS_ORDER)].sum(axis=1)
    finished = frame["done"] + frame["failed"] + frame["diverged"]
    frame["progress"] = (finished / frame["total"].where(frame["total"] > 0)).fillna(0.0)
    return frame


def _final_metric(name: str):  # type: ignore[no-untyped-def]
    return cast(Trial.final_metrics[name].as_float(), Float).label(name)


TRIAL_COLUMNS = (
    Trial.id,
    Trial.label,
    Trial.arch,
    Trial.status,
    Trial.attempts,
    Trial.size_target,
    Trial.params_non_embedding,
    Trial.params_total,
    Trial.state_size,
    Trial.tokens,
    Trial.tokens_seen,
    Trial.steps_done,
    Trial.steps_total,
    Trial.flops_6nd,
    Trial.flops_exact,
    Trial.seed,
    Trial.lr,
    Trial.final_train_loss,
    Trial.final_val_loss,
    Trial.final_val_bpb,
    Trial.wall_time_s,
    Trial.tokens_per_s,
    Trial.diverged_step,
    Trial.started_at,
    Trial.finished_at,
    Trial.heartbeat_at,
    Trial.error,
)


def trial_table(store: Store, sweep: str | None) -> pd.DataFrame:
    """Every trial of a sweep (or of the store) with its progress, final metrics and error, one row each."""
    columns = [*TRIAL_COLUMNS, *(_final_metric(m) for m in EXTRA_FINAL_METRICS)]
    query = select(*columns)
    if sweep is not None:
        query = (
            query.join(SweepTrial, SweepTrial.trial_id == Trial.id)
            .where(SweepTrial.sweep_name == sweep)
            .order_by(SweepTrial.position)
        )
    else:
        query = query.order_by(Trial.created_at, Trial.id)
    with store.session() as session:
        rows = session.execute(query).all()
    names = [c.key if hasattr(c, "key") else c.name for c in columns]
    frame = _frame(rows, names)
    frame["progress"] = (frame["steps_done"] / frame["steps_total"].where(frame["steps_total"] > 0)).fillna(0)
    return frame


def eval_metrics(store: Store, trial_ids: Sequence[str]) -> list[str]:
    """Metric names recorded for these trials (uses the (trial_id, metric) index)."""
    names: set[str] = set()
    with store.session() as session:
        for start in range(0, len(trial_ids), MAX_IDS_PER_QUERY):
            chunk = list(trial_ids[start : start + MAX_IDS_PER_QUERY])
            names.update(
                session.scalars(select(Eval.metric).distinct().where(Eval.trial_id.in_(chunk))).all()
            )
    return sorted(names)


CURVE_COLUMNS = ["trial_id", "step", "tokens_seen", "flops", "value"]


def curves(store: Store, trial_ids: Sequence[str], metric: str, max_points: int = 150) -> pd.DataFrame:
    """Training curves of one metric, at most ``max_points`` rows per trial (first and last always kept).

    Downsampling happens in SQL: each trial's rows are numbered by step and every ``stride``-th is kept,
    so a 10,000-step curve costs the browser 150 points and the wire 150 rows.
    """
    ids = list(trial_ids)
    parts = [
        _curves_chunk(store, ids[i : i + MAX_IDS_PER_QUERY], metric, max_points)
        for i in range(0, len(ids), MAX_IDS_PER_QUERY)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CURVE_COLUMNS)


def _curves_chunk(store: Store, trial_ids: list[str], metric: str, max_points: int) -> pd.DataFrame:
    numbered = (
        select(
            Eval.trial_id,
            Eval.step,
            Eval.tokens_seen,
            Eval.flops,
            Eval.value,
            func.row_number().over(partition_by=Eval.trial_id, order_by=Eval.step).label("rn"),
            func.count().over(partition_by=Eval.trial_id).label("n"),
        )
        .where(Eval.metric == metric, Eval.trial_id.in_(trial_ids))
        .subquery()
    )
    # ceil(n / max_points) in integer arithmetic on both dialects
    stride = case((numbered.c.n > max_points, (numbered.c.n + max_points - 1) // max_points), else_=1)
    query = (
        select(*(numbered.c[name] for name in CURVE_COLUMNS))
        .where(or_((numbered.c.rn - 1) % stride == 0, numbered.c.rn == numbered.c.n))
        .order_by(numbered.c.trial_id, numbered.c.step)
    )
    with store.session() as session:
        return _frame(session.execute(query).all(), CURVE_COLUMNS)


def recall_rows(store: Store, sweep: str | None) -> pd.DataFrame:
    """Per trial: its final metrics, its width and state sizes (a recall study records them in the
    trial config under ``recall``; a language-model trial has d_model and one state size)."""
    query = select(
        Trial.id,
        Trial.label,
        Trial.status,
        Trial.seed,
        Trial.lr,
        Trial.params_non_embedding,
        Trial.state_size,
        Trial.tokens,
        Trial.final_metrics,
        Trial.config["recall"].label("recall"),
        Trial.config[("model", "d_model")].as_integer().label("d_model"),
    )
    if sweep is not None:
        query = query.join(SweepTrial, SweepTrial.trial_id == Trial.id).where(SweepTrial.sweep_name == sweep)
    with store.session() as session:
        rows = session.execute(query).all()
    return _frame(
        rows,
        [
            "id",
            "label",
            "status",
            "seed",
            "lr",
            "params_non_embedding",
            "state_size",
            "tokens",
            "final_metrics",
            "recall",
            "d_model",
        ],
    )
