"""The service's sweep queue: submit, list, claim fairly, finish, cancel. Imports no torch or Ray.

Every transition is a fenced update (``WHERE status = <expected>``) so that two schedulers, or a
scheduler and a cancel request, never both win: the loser sees that no row changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orchestrator.store.schema import utcnow
from orchestrator.store.service_schema import QUEUE_FINAL_STATUSES, QueuedSweep


@dataclass(frozen=True)
class QueueEntry:
    """A plain copy of a queue row (safe to hand across threads after its session is closed)."""

    name: str
    owner: str
    status: str
    spec_hash: str
    trials: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "owner": self.owner,
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _entry(row: QueuedSweep) -> QueueEntry:
    return QueueEntry(
        name=row.name,
        owner=row.owner,
        status=row.status,
        spec_hash=row.spec_hash,
        trials=row.trials,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=bool(row.cancel_requested),
        error=row.error,
    )


def get(store: Any, name: str) -> QueueEntry | None:
    def op(session: Session) -> QueueEntry | None:
        row = session.get(QueuedSweep, name)
        return _entry(row) if row is not None else None

    return store._read(op)


def entries(store: Any, statuses: Iterable[str] | None = None) -> list[QueueEntry]:
    """Queue rows, oldest submission first."""

    def op(session: Session) -> list[QueueEntry]:
        query = select(QueuedSweep).order_by(QueuedSweep.submitted_at, QueuedSweep.name)
        if statuses is not None:
            query = query.where(QueuedSweep.status.in_(list(statuses)))
        return [_entry(row) for row in session.scalars(query)]

    return store._read(op)


def submit(
    store: Any, *, name: str, spec: dict[str, Any], spec_hash: str, owner: str, trials: int
) -> tuple[QueueEntry, bool]:
    """Queue a sweep, or find it. Returns (entry, created).

    The same spec again is the same sweep: nothing changes (created False), except that a sweep that
    ended cancelled or failed is queued again (the user asked for it to run). A changed spec under a
    finished sweep's name replaces it and is queued (as ``ceiling run`` with an edited file would).
    The caller refuses a changed spec while the sweep is queued or running (see ``conflict``).
    """

    def op(session: Session) -> tuple[QueueEntry, bool]:
        row = session.get(QueuedSweep, name)
        if row is None:
            row = QueuedSweep(
                name=name, spec=spec, spec_hash=spec_hash, owner=owner, status="queued", trials=trials
            )
            session.add(row)
            session.flush()
            return _entry(row), True
        changed = row.spec_hash != spec_hash
        if changed or row.status in ("cancelled", "failed"):  # asked again: run it again
            if row.status in ("queued", "running"):
                return _entry(row), False  # the caller saw no conflict a moment ago; report it as is
            row.spec, row.spec_hash, row.trials, row.status = spec, spec_hash, trials, "queued"
            row.submitted_at, row.started_at, row.finished_at = utcnow(), None, None
            row.error, row.cancel_requested = None, False
        return _entry(row), changed

    return store._write(op)


def claim(store: Any, name: str) -> bool:
    """Move a queued sweep to running; False if it is no longer queued (cancelled meanwhile)."""

    def op(session: Session) -> bool:
        result = session.execute(
            update(QueuedSweep)
            .where(QueuedSweep.name == name, QueuedSweep.status == "queued")
            .values(status="running", started_at=utcnow(), finished_at=None, error=None)
        )
        return result.rowcount == 1

    return store._write(op)


def finish(store: Any, name: str, status: str, error: str | None = None) -> bool:
    """Record how a running sweep ended (done, failed or cancelled); False if it was not running."""
    if status not in QUEUE_FINAL_STATUSES:
        raise ValueError(f"a sweep ends as one of {QUEUE_FINAL_STATUSES}, not {status!r}")

    def op(session: Session) -> bool:
        result = session.execute(
            update(QueuedSweep)
            .where(QueuedSweep.name == name, QueuedSweep.status == "running")
            .values(status=status, finished_at=utcnow(), error=error, cancel_requested=False)
        )
        return result.rowcount == 1

    return store._write(op)


def cancel(store: Any, name: str) -> QueueEntry | None:
    """Cancel a queued or running sweep: it is ``cancelled`` at once; the scheduler stops a running
    one's process (its running trials go back to pending). A finished sweep is left as it is. None if
    the sweep is not in the queue."""

    def op(session: Session) -> QueueEntry | None:
        row = session.get(QueuedSweep, name)
        if row is None:
            return None
        if row.status in ("queued", "running"):
            row.cancel_requested = row.status == "running"
            row.status, row.finished_at = "cancelled", utcnow()
        return _entry(row)

    return store._write(op)


def pick_next(every: Sequence[QueueEntry]) -> QueueEntry | None:
    """The fair choice among the queued sweeps of ``every`` queue entry: round-robin over owners.

    The owner with the fewest sweeps running goes first; among equals, the owner served least recently
    (whose last start, of any sweep still in the queue table, is oldest; never served comes first);
    then the owner whose oldest queued sweep is oldest. That owner's oldest queued sweep runs. So one
    user's 50 queued sweeps take turns with another user's one instead of all going before it.
    """
    queued = sorted((e for e in every if e.status == "queued"), key=lambda e: (e.submitted_at, e.name))
    if not queued:
        return None
    running_count: dict[str, int] = {}
    last_start: dict[str, datetime] = {}
    for entry in every:
        if entry.status == "running":
            running_count[entry.owner] = running_count.get(entry.owner, 0) + 1
        if entry.started_at is not None:
            last_start[entry.owner] = max(entry.started_at, last_start.get(entry.owner, entry.started_at))
    oldest: dict[str, QueueEntry] = {}
    for entry in queued:
        oldest.setdefault(entry.owner, entry)

    def turn(owner: str) -> tuple[int, bool, float, float, str]:
        started = last_start.get(owner)
        return (
            running_count.get(owner, 0),
            started is not None,
            started.timestamp() if started is not None else 0.0,
            oldest[owner].submitted_at.timestamp(),
            owner,
        )

    return oldest[min(oldest, key=turn)]
