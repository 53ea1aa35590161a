"""Stores for the dashboard tests: real sweeps (two architectures), an empty one, a half-finished one,
and a recall study made of rows (recall training is exercised in tests/orchestrator/recall)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, select, update

from orchestrator.store import Eval, Store, Trial

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
APP = DASHBOARD / "app.py"
# A second real sweep so the law pages have two architectures and isoFLOP budgets: 2 architectures x
# 2 budgets x 4 sizes = 16 tiny trials (8 per architecture: enough for a chinchilla fit), ~40 s on 2 cores.
LADDER = {
    "name": "dash-ladder",
    "architectures": ["transformer", "hawk"],
    "sizes": ["10k", "30k"],
    "budgets": {"isoflop": {"budgets": [1e9, 3e9], "points": 4}},
    "seeds": [0],
    "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 64, "val_tokens": 4096},
    "training": {
        "batch_tokens": 1024,
        "lr": 3e-3,
        "schedule": "wsd",
        "warmup_frac": 0.1,
        "cooldown_frac": 0.2,
        "precision": "bf16",
        "eval_interval": 8,
        "log_interval": 4,
    },
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 2, "retries": 0},
}


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a (WAL-mode) SQLite store: the backup API, not a file copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture(scope="session")
def dash_store(smoke_run, ray_runtime, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The smoke sweep's store plus a small two-architecture isoFLOP sweep, run for real."""
    from rich.console import Console

    from orchestrator.scheduling.runner import prepare_sweep, run_sweep
    from orchestrator.spec import load_spec

    smoke_dir, _ = smoke_run
    workdir = tmp_path_factory.mktemp("dash")
    copy_sqlite(smoke_dir / "ceiling.db", workdir / "ceiling.db")
    url = f"sqlite:///{workdir / 'ceiling.db'}"
    spec_file = workdir / "ladder.yaml"
    spec_file.write_text(yaml.safe_dump(LADDER))
    console = Console(stderr=True, quiet=True)
    context = prepare_sweep(
        load_spec(spec_file), workdir=workdir, db_url=url, tracking_uri=None, console=console
    )
    summary = run_sweep(context, address=None, console=console)
    assert summary.get("done", 0) + summary.get("ran", 0) > 0, summary
    store = Store.open(url)
    assert {t.status for t in store.trials("dash-ladder")} == {"done"}
    store.close()
    return url


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'empty' / 'ceiling.db'}"
    Store.open(url).close()  # migrated: every table, no sweeps
    return url


TRACEBACK = (
    'Traceback (most recent call last):\n  File "loop.py", line 1, in train\n'
    "RuntimeError: worker ran out of memory (simulated)"
)


@pytest.fixture
def partial_store(dash_store: str, tmp_path: Path) -> str:
    """The two sweeps as if caught mid-run: one trial running, one pending without evals, one failed with
    its traceback, one diverged."""
    target = tmp_path / "partial" / "ceiling.db"
    copy_sqlite(Path(dash_store.removeprefix("sqlite:///")), target)
    url = f"sqlite:///{target}"
    store = Store.open(url)
    hawk = [t.id for t in store.trials("dash-ladder") if t.label == "hawk"]
    cleared = {"final_val_loss": None, "final_val_bpb": None, "final_train_loss": None, "final_metrics": None}
    now = datetime.now(timezone.utc)
    with store.session() as session, session.begin():
        session.execute(
            update(Trial)
            .where(Trial.id == hawk[0])
            .values(status="running", heartbeat_at=now, steps_done=Trial.steps_total // 2, **cleared)
        )
        session.execute(
            update(Trial).where(Trial.id == hawk[1]).values(status="pending", steps_done=0, **cleared)
        )
        session.execute(delete(Eval).where(Eval.trial_id == hawk[1]))
        session.execute(
            update(Trial)
            .where(Trial.id == hawk[2])
            .values(status="failed", attempts=2, error=TRACEBACK, **cleared)
        )
        session.execute(
            update(Trial)
            .where(Trial.id == hawk[3])
            .values(status="diverged", diverged_step=7, error="loss became NaN at step 7", **cleared)
        )
        assert session.scalar(select(Trial.status).where(Trial.id == hawk[2])) == "failed"
    store.close()
    return url


@pytest.fixture(scope="session")
def recall_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A recall study as the store holds it: per trial, width and per-setting state sizes in the config and
    recall accuracies in final_metrics (2 architectures x 2 widths x 2 learning rates x 2 seeds)."""
    from tests.factories import make_trial

    url = f"sqlite:///{tmp_path_factory.mktemp('recall') / 'ceiling.db'}"
    store = Store.open(url)
    store.upsert_sweep("recall-fake", {"task": {"name": "mqar"}}, workdir=None, code_version=None)
    rows, finals = [], {}
    for label, state_per_width in (("transformer", 64), ("hawk", 2)):
        for width in (64, 128):
            for lr in (1e-3, 3e-3):
                for seed in (0, 1):
                    trial_id = f"{label[:4]}-{width}-{lr:g}-{seed}"
                    sizes = {"T64_kv4": state_per_width * width, "T128_kv16": 2 * state_per_width * width}
                    recall = {"width": width, "state_sizes": sizes, "hardest": "T128_kv16"}
                    rows.append(
                        make_trial(
                            trial_id,
                            arch=label,
                            label=label,
                            lr=lr,
                            seed=seed,
                            config={"task": {"name": "mqar"}, "recall": recall, "model": {"d_model": width}},
                        )
                    )
                    # better with width, with the larger lr, and for the transformer
                    base = 0.5 + 0.2 * (width == 128) + 0.1 * (lr == 3e-3) + 0.15 * (label == "transformer")
                    finals[trial_id] = {
                        "recall_accuracy": base + 0.01 * seed,
                        "recall_accuracy/T64_kv4": min(1.0, base + 0.1),
                        "recall_accuracy/T128_kv16": base - 0.1,
                    }
    store.add_trials("recall-fake", rows)
    for trial_id, metrics in finals.items():
        attempt = store.claim(trial_id)
        store.finish(trial_id, attempt, final_metrics=metrics)
    store.close()
    return url
