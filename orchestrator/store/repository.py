"""Reads and writes of sweeps, trials and evals. Every write that a worker makes is fenced by attempt.

A trial's ``attempts`` counter is bumped when the orchestrator hands it to a worker; the worker passes
that number back with every write, and a write from an older attempt (an orphaned worker of a killed
run) matches no row and raises :class:`StaleAttempt` instead of overwriting the live attempt's work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.store.engine import make_engine, migrate, with_retries
from orchestrator.store.schema import (
    FINAL_STATUSES,
    Eval,
    Fit,
    Sweep,
    SweepTrial,
    Trial,
    TuningChoice,
    utcnow,
)


class StaleAttempt(RuntimeError):
    """A write from an attempt that is no longer the trial's current one."""


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        engine = make_engine(url)
        if create:
            with_retries(lambda: migrate(engine))
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, operation) -> Any:  # type: ignore[no-untyped-def]
        def run() -> Any:
            with self.session() as session, session.begin():
                return operation(session)

        return with_retries(run)

    def _read(self, operation) -> Any:  # type: ignore[no-untyped-def]
        def run() -> Any:
            with self.session() as session:
                return operation(session)

        return with_retries(run)

    # --- sweeps -------------------------------------------------------------------------------
    def upsert_sweep(
        self, name: str, spec: dict[str, Any], *, workdir: str | None, code_version: str | None
    ) -> None:
        def op(session: Session) -> None:
            sweep = session.get(Sweep, name)
            if sweep is None:
                session.add(Sweep(name=name, spec=spec, workdir=workdir, code_version=code_version))
            else:
                sweep.spec, sweep.workdir, sweep.code_version = spec, workdir, code_version

        self._write(op)

    def get_sweep(self, name: str) -> Sweep | None:
        return self._read(lambda s: s.get(Sweep, name))

    def sweeps(self) -> list[Sweep]:
        return self._read(lambda s: list(s.scalars(select(Sweep).order_by(Sweep.created_at))))

    def set_sweep_mlflow(self, name: str, experiment_id: str, run_id: str) -> None:
        def op(session: Session) -> None:
            sweep = session.get(Sweep, name)
            sweep.mlflow_experiment_id, sweep.mlflow_run_id = experiment_id, run_id

        self._write(op)

    # --- trials -------------------------------------------------------------------------------
    def add_trials(self, sweep_name: str, trials: Sequence[dict[str, Any]]) -> int:
        """Insert trials not yet stored (content-addressed by id) and link all to the sweep. Returns new count."""

        def op(session: Session) -> int:
            ids = [t["id"] for t in trials]
            existing = set(session.scalars(select(Trial.id).where(Trial.id.in_(ids)))) if ids else set()
            linked = set(
                session.scalars(select(SweepTrial.trial_id).where(SweepTrial.sweep_name == sweep_name))
            )
            new = 0
            for trial in trials:
                if trial["id"] not in existing:
                    session.add(Trial(**trial))
                    existing.add(trial["id"])
                    new += 1
            session.flush()  # trials before the links that reference them (no ORM relationship orders them)
            for position, trial in enumerate(trials):
                if trial["id"] not in linked:
                    session.add(SweepTrial(sweep_name=sweep_name, trial_id=trial["id"], position=position))
                    linked.add(trial["id"])
            return new

        return self._write(op)

    def trials(self, sweep_name: str | None = None, *, statuses: Iterable[str] | None = None) -> list[Trial]:
        def op(session: Session) -> list[Trial]:
            query = select(Trial)
            if sweep_name is not None:
                query = (
                    query.join(SweepTrial, SweepTrial.trial_id == Trial.id)
                    .where(SweepTrial.sweep_name == sweep_name)
                    .order_by(SweepTrial.position)
                )
            else:
                query = query.order_by(Trial.created_at)
            if statuses is not None:
                query = query.where(Trial.status.in_(list(statuses)))
            return list(session.scalars(query))

        return self._read(op)

    def get_trial(self, trial_id: str) -> Trial | None:
        return self._read(lambda s: s.get(Trial, trial_id))

    def status_counts(self, sweep_name: str) -> dict[str, int]:
        def op(session: Session) -> dict[str, int]:
            rows = session.execute(
                select(Trial.status, func.count())
                .join(SweepTrial, SweepTrial.trial_id == Trial.id)
                .where(SweepTrial.sweep_name == sweep_name)
                .group_by(Trial.status)
            )
            return {status: count for status, count in rows}

        return self._read(op)

    def claim(self, trial_id: str, *, unless_final: bool = False) -> int | None:
        """Mark a trial running under a new attempt number and return that number.

        With ``unless_final``, a trial already ``done`` or ``diverged`` (finished by another sweep's run
        that shares it, since trials are content-addressed) is left alone and None is returned.
        """

        def op(session: Session) -> int | None:
            trial = session.get(Trial, trial_id, with_for_update=True)
            if unless_final and trial.status in FINAL_STATUSES:
                return None
            trial.attempts += 1
            trial.status, trial.error = "running", None
            trial.started_at = trial.started_at or utcnow()
            trial.heartbeat_at = utcnow()
            return trial.attempts

        return self._write(op)

    def _fenced_update(
        self, trial_id: str, attempt: int, *, unless_final: bool = False, **values: Any
    ) -> None:
        def op(session: Session) -> None:
            query = update(Trial).where(Trial.id == trial_id, Trial.attempts == attempt)
            if unless_final:
                query = query.where(Trial.status.not_in(FINAL_STATUSES))
            result = session.execute(query.values(**values))
            if result.rowcount == 0:
                raise StaleAttempt(f"trial {trial_id}: attempt {attempt} is no longer current")

        self._write(op)

    def heartbeat(self, trial_id: str, attempt: int, **progress: Any) -> None:
        self._fenced_update(trial_id, attempt, heartbeat_at=utcnow(), **progress)

    def finish(self, trial_id: str, attempt: int, **final: Any) -> None:
        self._fenced_update(trial_id, attempt, status="done", error=None, finished_at=utcnow(), **final)

    def fail(self, trial_id: str, attempt: int, error: str, *, status: str = "failed", **extra: Any) -> None:
        self._fenced_update(
            trial_id, attempt, status=status, error=error[-8000:], finished_at=utcnow(), **extra
        )

    def release(self, trial_id: str, attempt: int, error: str) -> None:
        """Hand a trial back as pending (it will be retried); keeps its attempt count.

        Refused (StaleAttempt) once the attempt has written its final record: a worker that dies
        after committing `done` must not send its trial round again.
        """
        self._fenced_update(trial_id, attempt, unless_final=True, status="pending", error=error[-8000:])

    def reset_interrupted(self, sweep_name: str) -> int:
        """Trials left ``running`` by a killed orchestrator go back to ``pending``."""

        def op(session: Session) -> int:
            ids = select(SweepTrial.trial_id).where(SweepTrial.sweep_name == sweep_name)
            result = session.execute(
                update(Trial).where(Trial.id.in_(ids), Trial.status == "running").values(status="pending")
            )
            return result.rowcount

        return self._write(op)

    # --- evals --------------------------------------------------------------------------------
    def record_evals(self, trial_id: str, attempt: int, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert eval rows ``{step, tokens_seen, flops, metric, value}``; a rerun step overwrites.

        Fenced like every worker write: rows from an attempt that is no longer current are refused.
        """
        if not rows:
            return
        values = [{"trial_id": trial_id, **row} for row in rows]

        def op(session: Session) -> None:
            current = session.scalar(select(Trial.attempts).where(Trial.id == trial_id).with_for_update())
            if current != attempt:
                raise StaleAttempt(f"trial {trial_id}: attempt {attempt} is no longer current")
            dialect = session.bind.dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(Eval).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["trial_id", "step", "metric"],
                set_={
                    "value": statement.excluded.value,
                    "tokens_seen": statement.excluded.tokens_seen,
                    "flops": statement.excluded.flops,
                },
            )
            session.execute(statement)

        self._write(op)

    def evals(self, trial_ids: Sequence[str], metric: str | None = None) -> list[Eval]:
        def op(session: Session) -> list[Eval]:
            query = select(Eval).where(Eval.trial_id.in_(list(trial_ids))).order_by(Eval.trial_id, Eval.step)
            if metric is not None:
                query = query.where(Eval.metric == metric)
            return list(session.scalars(query))

        return self._read(op)

    # --- tuning -------------------------------------------------------------------------------
    def set_trial_lr(self, trial_id: str, lr: float, beta2: float | None = None) -> None:
        """Record the learning rate (and beta2) a tuned trial runs with, chosen when it starts."""

        def op(session: Session) -> None:
            trial = session.get(Trial, trial_id)
            trial.lr = lr
            if beta2 is not None:  # a record beside the config's beta2, which the trial id hashes
                trial.config = trial.trial_config.with_training(beta2_chosen=beta2).to_dict()

        self._write(op)

    def record_tuning_choice(
        self,
        sweep_name: str,
        *,
        arch: str,
        label: str,
        method: str,
        lr: float,
        details: dict[str, Any],
        beta2: float | None = None,
    ) -> None:
        """Store a choice once: the first recorded choice of (sweep, arch, size) stands."""

        def op(session: Session) -> None:
            exists = session.scalar(
                select(TuningChoice.id).where(
                    TuningChoice.sweep_name == sweep_name,
                    TuningChoice.arch == arch,
                    TuningChoice.label == label,
                )
            )
            if exists is None:
                session.add(
                    TuningChoice(
                        sweep_name=sweep_name,
                        arch=arch,
                        label=label,
                        method=method,
                        lr=lr,
                        beta2=beta2,
                        details=details,
                    )
                )

        self._write(op)

    def tuning_results(self, sweep_name: str) -> list[dict[str, Any]]:
        """Every tuning choice of a sweep: ``{arch, label, method, lr, beta2, details}``."""

        def op(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(
                select(TuningChoice).where(TuningChoice.sweep_name == sweep_name).order_by(TuningChoice.id)
            )
            return [
                {
                    "arch": r.arch,
                    "label": r.label,
                    "method": r.method,
                    "lr": r.lr,
                    "beta2": r.beta2,
                    "details": r.details,
                }
                for r in rows
            ]

        return self._read(op)

    # --- fits ---------------------------------------------------------------------------------
    def cached_fit(self, inputs_hash: str) -> dict[str, Any] | None:
        return self._read(lambda s: s.scalar(select(Fit.result).where(Fit.inputs_hash == inputs_hash)))

    def save_fit(
        self,
        *,
        inputs_hash: str,
        sweep_name: str | None,
        group: str,
        metric: str,
        form: str,
        settings: dict[str, Any],
        result: dict[str, Any],
    ) -> None:
        def op(session: Session) -> None:
            if session.scalar(select(Fit.id).where(Fit.inputs_hash == inputs_hash)) is None:
                session.add(
                    Fit(
                        inputs_hash=inputs_hash,
                        sweep_name=sweep_name,
                        group=group,
                        metric=metric,
                        form=form,
                        settings=settings,
                        result=result,
                    )
                )

        self._write(op)
