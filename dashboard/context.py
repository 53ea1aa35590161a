"""Which store the dashboard reads, whether it is usable, and a cheap token of its latest change.

Nothing here imports streamlit, so it is unit-testable; `dashboard.cached` wraps it for the app.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from orchestrator.store import Eval, Store, Sweep, SweepTrial, Trial, redact, resolve_url

REQUIRED_TABLES = ("sweeps", "trials", "sweep_trials", "evals", "fits")
FINISHED = ("done", "failed", "diverged")


def db_url_from(argv: Sequence[str]) -> str:
    """``streamlit run dashboard/app.py -- --db URL [--workdir W]``, else CEILING_DB, else ./ceiling-runs.

    ``ceiling dashboard`` passes the URL in CEILING_DB instead, so a password never shows in ``ps``.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db")
    parser.add_argument("--workdir")
    known, _ = parser.parse_known_args(list(argv))
    return resolve_url(known.db, known.workdir)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def store_problem(url: str) -> str | None:
    """Why this URL cannot be read yet (a message for the user), or None if it can.

    Checked before opening so the dashboard never creates an empty SQLite file where a user mistyped a path.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return (
            f"No store at `{path}` yet. Start a sweep (`ceiling run examples/quickstart.yaml`) or point the "
            "dashboard at an existing one (`ceiling dashboard --db URL` or `--workdir DIR`)."
        )
    return None


def missing_tables(store: Store) -> list[str]:
    present = set(inspect(store.engine).get_table_names())
    return [t for t in REQUIRED_TABLES if t not in present]


@dataclass(frozen=True)
class ChangeToken:
    """What changed in the store, split so that caches are only dropped by the changes that matter.

    ``trials``: any trial progress (heartbeats too) -> tables and progress. ``results``: trials that
    reached an end state, sweeps and their links -> fits and comparisons, which a running sweep's
    heartbeats must not invalidate (a fit costs seconds). ``evals``: new eval rows -> curves.
    """

    trials: str
    results: str
    evals: str


def change_token(store: Store) -> ChangeToken:
    """Three aggregate queries; each is a scan of the small tables or an index lookup (~ms at 10k trials)."""
    with store.session() as session:
        sweeps = session.execute(select(func.count(), func.max(Sweep.updated_at))).one()
        links = session.scalar(select(func.count()).select_from(SweepTrial))
        by_status = session.execute(
            select(
                Trial.status,
                func.count(),
                func.sum(Trial.attempts),
                func.sum(Trial.steps_done),
                func.max(Trial.heartbeat_at),
                func.max(Trial.finished_at),
            )
            .group_by(Trial.status)
            .order_by(Trial.status)
        ).all()
        last_eval = session.scalar(select(func.max(Eval.id)))
    structure = f"{sweeps[0]}|{sweeps[1]}|{links}"
    trials = structure + "|" + ";".join(",".join(str(v) for v in row) for row in by_status)
    ended = [row for row in by_status if row[0] in FINISHED]
    results = structure + "|" + ";".join(f"{row[0]},{row[1]},{row[5]}" for row in ended)
    return ChangeToken(trials=trials, results=results, evals=f"{last_eval}|{trials}")


@dataclass(frozen=True)
class Context:
    """What every page needs: the store's URL (and a printable form), a problem message, the change token
    and the sweep chosen in the sidebar (None = every sweep)."""

    url: str
    problem: str | None
    token: ChangeToken | None
    sweeps: tuple[str, ...]
    sweep: str | None

    @property
    def shown_url(self) -> str:
        return redact(self.url)

    @property
    def scope(self) -> str:
        return f"sweep `{self.sweep}`" if self.sweep else "all sweeps"
