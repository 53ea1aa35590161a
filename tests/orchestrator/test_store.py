"""The SQL store on SQLite and PostgreSQL: migrations, content-addressed trials, attempt fencing, upserts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from orchestrator.store import Eval, Fit, StaleAttempt, Store, SweepTrial, Trial, redact, resolve_url
from orchestrator.store.engine import MIGRATIONS_DIR
from tests.factories import make_trial


@pytest.fixture
def store(store_url: str):
    opened = Store.open(store_url)
    yield opened
    opened.close()


def _count(store: Store, model, *where) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _sweep(store: Store, name: str) -> None:
    store.upsert_sweep(name, {"name": name}, workdir="/tmp/w", code_version="test")


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_migrations_are_idempotent(store_url: str):
    first = Store.open(store_url)
    _sweep(first, "kept")
    first.close()
    second = Store.open(store_url)  # migrating an up-to-date schema changes nothing and loses nothing
    try:
        tables = set(inspect(second.engine).get_table_names())
        assert {"sweeps", "trials", "sweep_trials", "evals", "fits", "alembic_version"} <= tables
        with second.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [_head_revision()]
        assert [s.name for s in second.sweeps()] == ["kept"]
    finally:
        second.close()


def test_upsert_sweep_updates_in_place(store: Store):
    store.upsert_sweep("s", {"v": 1}, workdir="/a", code_version="c1")
    store.upsert_sweep("s", {"v": 2}, workdir="/b", code_version="c2")
    sweep = store.get_sweep("s")
    assert (sweep.spec, sweep.workdir, sweep.code_version) == ({"v": 2}, "/b", "c2")
    assert len(store.sweeps()) == 1 and store.get_sweep("nope") is None


def test_add_trials_is_idempotent_and_shares_trials_between_sweeps(store: Store):
    _sweep(store, "one")
    _sweep(store, "two")
    a, b, c = make_trial("a" * 16), make_trial("b" * 16, seed=1), make_trial("c" * 16, seed=2)
    assert store.add_trials("one", [a, b]) == 2
    assert store.add_trials("one", [a, b]) == 0
    assert store.add_trials("two", [b, c]) == 1  # b is already stored: only linked
    assert _count(store, Trial) == 3
    assert _count(store, SweepTrial) == 4
    assert [t.id for t in store.trials("one")] == [a["id"], b["id"]]
    assert [t.id for t in store.trials("two")] == [b["id"], c["id"]]
    assert len(store.trials()) == 3
    stored = store.get_trial(b["id"])
    assert (stored.status, stored.attempts, stored.seed, stored.config) == ("pending", 0, 1, b["config"])
    assert stored.params_total == 33_240 and stored.tokens == 63_488


def test_claim_bumps_attempts_and_marks_running(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    assert store.claim("t1") == 1
    trial = store.get_trial("t1")
    assert (trial.status, trial.attempts, trial.error) == ("running", 1, None)
    assert trial.started_at is not None and trial.heartbeat_at is not None
    started = trial.started_at
    assert store.claim("t1") == 2
    again = store.get_trial("t1")
    assert again.attempts == 2 and again.started_at == started  # the first start is kept


def test_stale_attempt_cannot_write(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    old = store.claim("t1")
    current = store.claim("t1")
    store.heartbeat("t1", current, steps_done=5, tokens_seen=10_240, last_train_loss=3.5)
    with pytest.raises(StaleAttempt, match=r"trial t1: attempt 1 is no longer current"):
        store.finish("t1", old, final_val_loss=0.5, steps_done=31)
    with pytest.raises(StaleAttempt):
        store.heartbeat("t1", old, steps_done=99)
    with pytest.raises(StaleAttempt):
        store.fail("t1", old, "orphan failed")
    with pytest.raises(StaleAttempt):
        store.release("t1", old, "orphan released")
    trial = store.get_trial("t1")
    assert (trial.status, trial.attempts, trial.steps_done, trial.tokens_seen) == ("running", 2, 5, 10_240)
    assert trial.final_val_loss is None and trial.error is None and trial.finished_at is None
    with pytest.raises(StaleAttempt):
        store.heartbeat("t1", current + 1)  # a future attempt is not current either


def test_finish_sets_done_and_final_fields(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    attempt = store.claim("t1")
    store.fail("t1", attempt, "x" * 9000, status="failed")
    assert len(store.get_trial("t1").error) == 8000  # the tail of a long traceback is kept
    attempt = store.claim("t1")
    store.finish(
        "t1",
        attempt,
        final_train_loss=2.5,
        final_val_loss=2.75,
        final_val_bpb=3.9674,
        final_metrics={"recall_acc": 0.25},
        steps_done=31,
        tokens_seen=63_488,
        wall_time_s=12.5,
    )
    trial = store.get_trial("t1")
    assert (trial.status, trial.error, trial.attempts) == ("done", None, 2)
    assert (trial.final_train_loss, trial.final_val_loss, trial.final_val_bpb) == (2.5, 2.75, 3.9674)
    assert trial.final_metrics == {"recall_acc": 0.25}
    assert (trial.steps_done, trial.tokens_seen, trial.wall_time_s) == (31, 63_488, 12.5)
    assert trial.finished_at is not None


def test_release_hands_the_trial_back_as_pending(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    attempt = store.claim("t1")
    store.release("t1", attempt, "worker lost")
    trial = store.get_trial("t1")
    assert (trial.status, trial.attempts, trial.error) == ("pending", 1, "worker lost")


def test_record_evals_upserts_per_trial_step_metric(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1"), make_trial("t2")])
    a1, a2 = store.claim("t1"), store.claim("t2")
    store.record_evals(
        "t1",
        a1,
        [
            {"step": 0, "tokens_seen": 0, "flops": 0.0, "metric": "val_loss", "value": 5.5},
            {"step": 16, "tokens_seen": 32_768, "flops": 1e9, "metric": "val_loss", "value": 4.0},
            {"step": 16, "tokens_seen": 32_768, "flops": 1e9, "metric": "train_loss", "value": 4.1},
        ],
    )
    store.record_evals(
        "t2", a2, [{"step": 16, "tokens_seen": 1, "flops": 1.0, "metric": "val_loss", "value": 9.0}]
    )
    # A resumed trial rewrites step 16: one row, the new value.
    store.record_evals(
        "t1", a1, [{"step": 16, "tokens_seen": 32_768, "flops": 2e9, "metric": "val_loss", "value": 3.5}]
    )
    store.record_evals("t1", a1, [])
    assert _count(store, Eval, Eval.trial_id == "t1") == 3
    rows = store.evals(["t1"], "val_loss")
    assert [(r.step, r.value, r.flops) for r in rows] == [(0, 5.5, 0.0), (16, 3.5, 2e9)]
    assert [r.value for r in store.evals(["t1"], "train_loss")] == [4.1]
    assert [r.value for r in store.evals(["t2"])] == [9.0]
    assert len(store.evals(["t1", "t2"])) == 4


def test_evals_from_a_stale_attempt_are_refused(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    old = store.claim("t1")
    store.record_evals(
        "t1", old, [{"step": 8, "tokens_seen": 8, "flops": 1.0, "metric": "val_loss", "value": 4.0}]
    )
    new = store.claim("t1")  # the orchestrator handed the trial to a new worker
    with pytest.raises(StaleAttempt):
        store.record_evals(
            "t1", old, [{"step": 8, "tokens_seen": 8, "flops": 1.0, "metric": "val_loss", "value": 9.9}]
        )
    store.record_evals(
        "t1", new, [{"step": 16, "tokens_seen": 16, "flops": 2.0, "metric": "val_loss", "value": 3.0}]
    )
    assert [(r.step, r.value) for r in store.evals(["t1"], "val_loss")] == [(8, 4.0), (16, 3.0)]


def test_status_counts_and_filters(store: Store):
    _sweep(store, "s")
    _sweep(store, "other")
    store.add_trials("s", [make_trial(f"t{i}") for i in range(4)])
    store.add_trials("other", [make_trial("x1")])
    store.claim("t0")
    store.finish("t1", store.claim("t1"))
    store.fail("t2", store.claim("t2"), "boom", status="diverged")
    assert store.status_counts("s") == {"pending": 1, "running": 1, "done": 1, "diverged": 1}
    assert store.status_counts("other") == {"pending": 1}
    assert store.status_counts("missing") == {}
    assert [t.id for t in store.trials("s", statuses=["done", "diverged"])] == ["t1", "t2"]


def test_reset_interrupted_only_touches_that_sweep(store: Store):
    _sweep(store, "s")
    _sweep(store, "other")
    store.add_trials("s", [make_trial("r1"), make_trial("r2"), make_trial("d1")])
    store.add_trials("other", [make_trial("o1")])
    for trial_id in ("r1", "r2", "o1"):
        store.claim(trial_id)
    store.finish("d1", store.claim("d1"))
    assert store.reset_interrupted("s") == 2
    assert {t.id: t.status for t in store.trials("s")} == {"r1": "pending", "r2": "pending", "d1": "done"}
    assert store.get_trial("o1").status == "running"
    assert store.get_trial("r1").attempts == 1  # the attempt count survives the reset
    assert store.reset_interrupted("s") == 0


def test_fit_cache_round_trip(store: Store):
    result = {"form": "chinchilla", "params": {"E": 1.7, "A": 400.0, "alpha": 0.34}, "n_runs": 12}
    assert store.cached_fit("h1") is None
    kwargs = {"sweep_name": "s", "group": "transformer", "metric": "val_loss", "form": "chinchilla"}
    store.save_fit(inputs_hash="h1", settings={"bootstrap": 100}, result=result, **kwargs)
    assert store.cached_fit("h1") == result
    store.save_fit(inputs_hash="h1", settings={"bootstrap": 100}, result={"other": True}, **kwargs)
    assert _count(store, Fit) == 1
    assert store.cached_fit("h1") == result  # the first fit for these inputs is kept
    assert store.cached_fit("h2") is None


def test_deleting_a_sweep_cascades_to_links_only(store: Store):
    _sweep(store, "s")
    store.add_trials("s", [make_trial("t1")])
    from orchestrator.store import Sweep

    with store.session() as session, session.begin():
        session.delete(session.get(Sweep, "s"))
    assert _count(store, SweepTrial) == 0 and _count(store, Trial) == 1


# --- URLs (no database needed) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://ceiling:s3cr3t@db.example:5432/runs",
            "postgresql+psycopg://ceiling:***@db.example:5432/runs",
        ),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////tmp/x/ceiling.db", "sqlite:////tmp/x/ceiling.db"),
        ("not a url", "<unparseable database URL>"),
    ],
    ids=["password", "escaped-password", "no-password", "sqlite", "garbage"],
)
def test_redact_hides_passwords(url: str, shown: str):
    assert redact(url) == shown
    assert "s3cr3t" not in redact(url) and "p%40ss" not in redact(url)


def test_resolve_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CEILING_DB", raising=False)
    monkeypatch.delenv("CEILING_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_url("runs/store.db") == f"sqlite:///{tmp_path / 'runs' / 'store.db'}"
    assert resolve_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    assert resolve_url("postgres://me:pw@host/db") == "postgresql+psycopg://me:pw@host/db"
    assert resolve_url("postgresql://me@host:5433/db") == "postgresql+psycopg://me@host:5433/db"
    assert resolve_url("postgresql+psycopg://me@host/db") == "postgresql+psycopg://me@host/db"
    assert resolve_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_url(None, tmp_path / "work") == f"sqlite:///{tmp_path / 'work' / 'ceiling.db'}"
    monkeypatch.setenv("CEILING_DB", "postgres://env@host/db")
    assert resolve_url(None, tmp_path / "ignored") == "postgresql+psycopg://env@host/db"
    monkeypatch.delenv("CEILING_DB")
    monkeypatch.setenv("CEILING_WORKDIR", str(tmp_path / "from-env"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'from-env' / 'ceiling.db'}"
