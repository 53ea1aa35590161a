"""The service's tables: the sweep queue that ``ceiling serve`` runs, and its API tokens.

Kept apart from ``schema.py`` (same ``Base``, so one alembic history) because only the HTTP service
writes them; the CLI, the workers and the dashboard never need to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.schema import Base, utcnow

QUEUE_STATUSES = ("queued", "running", "done", "cancelled", "failed")
QUEUE_FINAL_STATUSES = ("done", "cancelled", "failed")


class QueuedSweep(Base):
    """A sweep submitted to the service: who asked, when, and where it is in the queue.

    ``spec_hash`` is the hash of the canonical spec: the same spec submitted again finds this row
    (idempotent submit). ``name`` is the sweep's name in the ``sweeps`` table once it is prepared.
    """

    __tablename__ = "sweep_queue"
    __table_args__ = (Index("ix_sweep_queue_status_submitted", "status", "submitted_at"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trials: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """One bearer token of the service. Only the token's hash is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public handle: list, revoke
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
