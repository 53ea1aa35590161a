"""Opening a store: URL resolution, SQLite pragmas, migrations, and retries on a dropped connection."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_log = logging.getLogger("ceiling.store")
T = TypeVar("T")


def resolve_url(db: str | None, workdir: str | Path | None = None) -> str:
    """``--db`` / ``CEILING_DB`` if given, else SQLite under the work folder. Plain paths become SQLite URLs."""
    db = db or os.environ.get("CEILING_DB")
    if not db:
        base = Path(workdir or os.environ.get("CEILING_WORKDIR", "ceiling-runs")).resolve()
        return f"sqlite:///{base / 'ceiling.db'}"
    if "://" not in db:
        return f"sqlite:///{Path(db).expanduser().resolve()}"
    if db.startswith("postgres://"):
        db = "postgresql://" + db[len("postgres://") :]
    if db.startswith("postgresql://"):
        db = "postgresql+psycopg://" + db[len("postgresql://") :]
    return db


def redact(url: str) -> str:
    """The URL with its password hidden: safe for logs, MLflow params and the dashboard."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while trials write; busy_timeout makes concurrent writers wait
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_recycle=300)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def with_retries(operation: Callable[[], T], *, attempts: int = 8, first_delay_s: float = 0.5) -> T:
    """Run a store operation, retrying when the database is briefly unreachable (server restart).

    Each try is its own transaction, so a retried write either happened once or not at all; the
    writes are idempotent (upserts, fenced updates), so one whose commit was lost in flight is safe
    to repeat. Delays double from ``first_delay_s`` up to 10 s: 8 tries ride out ~35 s of outage.
    """
    delay = first_delay_s
    for attempt in range(attempts):
        try:
            return operation()
        except (OperationalError, DBAPIError, DisconnectionError) as exc:
            transient = _transient(exc)
            if not transient or attempt == attempts - 1:
                raise
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            _log.warning(
                "store unreachable (%s); retry %d/%d in %.1f s",
                _redact_text(first_line),
                attempt + 1,
                attempts - 1,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


def _transient(exc: Exception) -> bool:
    """Whether waiting could help: a lost or refused connection, a lock, a deadlock; not a bad query."""
    if getattr(exc, "connection_invalidated", False) or isinstance(exc, DisconnectionError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite reports everything as OperationalError, "no such table" included; only contention passes.
        return any(word in str(exc.orig).lower() for word in ("locked", "busy"))
    return True  # server drivers: connection failures, admin shutdown, "starting up", deadlocks


def _redact_text(message: str) -> str:
    """A driver error message with any ``user:password@`` it quotes hidden."""
    import re

    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:***@", message)
