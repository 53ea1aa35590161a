"""The SQL schema (SQLAlchemy 2 ORM). Alembic migrations under ``migrations/`` create and evolve it.

The store is the source of truth: a trial is ``done`` only once its final record is committed, and
eval rows are unique per (trial, step, metric) so a resumed trial can rewrite them without doubling.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.trial import TrialConfig


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


TRIAL_STATUSES = ("pending", "running", "done", "failed", "diverged")
# what a worker writes last: nothing after it (a retry, another sweep's claim) may undo it
FINAL_STATUSES = ("done", "diverged")


class Sweep(Base):
    __tablename__ = "sweeps"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    workdir: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str | None] = mapped_column(String(64))
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Trial(Base):
    __tablename__ = "trials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    arch: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(64))
    size_target: Mapped[float] = mapped_column(Float)
    params_total: Mapped[int] = mapped_column(BigInteger)
    params_embedding: Mapped[int] = mapped_column(BigInteger)
    params_non_embedding: Mapped[int] = mapped_column(BigInteger)
    state_size: Mapped[int] = mapped_column(BigInteger)
    seq_len: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(BigInteger)  # budget actually trained on: steps x batch tokens
    steps_total: Mapped[int] = mapped_column(Integer)
    flops_6nd: Mapped[float] = mapped_column(Float)
    flops_exact: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    lr: Mapped[float] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)

    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wall_time_s: Mapped[float | None] = mapped_column(Float)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    tokens_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    last_train_loss: Mapped[float | None] = mapped_column(Float)
    tokens_per_s: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid of rank 0 of the current attempt
    # main: a law point; trunk: a WSD run at constant LR that cooldown branches start from (not a law
    # point); branch: a cooldown from a trunk checkpoint (a law point); tuning: a short lr search run.
    role: Mapped[str] = mapped_column(String(16), default="main", server_default="main")
    parent_id: Mapped[str | None] = mapped_column(String(32))  # a branch's trunk

    final_train_loss: Mapped[float | None] = mapped_column(Float)
    final_val_loss: Mapped[float | None] = mapped_column(Float)
    final_val_bpb: Mapped[float | None] = mapped_column(Float)
    final_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    diverged_step: Mapped[int | None] = mapped_column(Integer)

    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    corpus_fingerprint: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(64))
    library_versions: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def trial_config(self) -> TrialConfig:
        """``config`` typed: read its attributes, not its keys (``config`` is the stored JSON form)."""
        return TrialConfig.from_dict(self.config)


class SweepTrial(Base):
    """Trials are content-addressed and may belong to several sweeps; this links them."""

    __tablename__ = "sweep_trials"

    sweep_name: Mapped[str] = mapped_column(ForeignKey("sweeps.name", ondelete="CASCADE"), primary_key=True)
    trial_id: Mapped[str] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class Eval(Base):
    __tablename__ = "evals"
    __table_args__ = (
        UniqueConstraint("trial_id", "step", "metric", name="uq_evals_trial_step_metric"),
        Index("ix_evals_trial_metric", "trial_id", "metric"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    tokens_seen: Mapped[int] = mapped_column(BigInteger)
    flops: Mapped[float] = mapped_column(Float)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


TRIAL_ROLES = ("main", "trunk", "branch", "tuning")
LAW_ROLES = ("main", "branch")  # the roles whose trials are scaling-law points


class TuningChoice(Base):
    """The learning rate chosen for one (architecture, size) of a sweep, and how it was chosen.

    ``method`` is ``search`` (the best of this size's own tuning trials) or ``rule`` (a power law in
    parameters fitted on smaller tuned sizes and extrapolated); ``details`` holds the candidates
    (``{"candidates": [{"lr", "loss", "trial_id", "beta2"?}], "rule": {...}}``).
    """

    __tablename__ = "tuning_choices"
    __table_args__ = (UniqueConstraint("sweep_name", "arch", "label", name="uq_tuning_sweep_arch_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_name: Mapped[str] = mapped_column(String(64), index=True)
    arch: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    lr: Mapped[float] = mapped_column(Float)
    beta2: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Fit(Base):
    """A cached scaling-law fit: recomputed only when its inputs (the runs used) change."""

    __tablename__ = "fits"
    __table_args__ = (UniqueConstraint("inputs_hash", name="uq_fits_inputs_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_name: Mapped[str | None] = mapped_column(String(64), index=True)
    group: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    form: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


from orchestrator.store import efficiency_schema as _efficiency_schema  # noqa: E402, F401  (the efficiency table)
from orchestrator.store import service_schema as _service_schema  # noqa: E402, F401  (the service tables)
