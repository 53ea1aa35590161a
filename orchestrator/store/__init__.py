"""The SQL store (SQLAlchemy + alembic). Imports neither torch, ray nor deepspeed: the dashboard uses it."""

from orchestrator.store.engine import redact, resolve_url
from orchestrator.store.repository import StaleAttempt, Store
from orchestrator.store.schema import (
    LAW_ROLES,
    TRIAL_ROLES,
    TRIAL_STATUSES,
    Eval,
    Fit,
    Sweep,
    SweepTrial,
    Trial,
    TuningChoice,
)

__all__ = [
    "LAW_ROLES",
    "TRIAL_ROLES",
    "TRIAL_STATUSES",
    "Eval",
    "Fit",
    "StaleAttempt",
    "Store",
    "Sweep",
    "SweepTrial",
    "Trial",
    "TuningChoice",
    "redact",
    "resolve_url",
]
