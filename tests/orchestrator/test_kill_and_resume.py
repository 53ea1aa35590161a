"""SIGKILL `ceiling run` mid-sweep, then `ceiling resume`: every trial done exactly once, no eval lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.store import Store
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


def _spec(tmp_path: Path) -> Path:
    spec = yaml.safe_load((EXAMPLES / "smoke.yaml").read_text())
    spec["name"] = "killtest"
    spec["budgets"] = {"tokens": ["128k", "192k"]}
    spec["training"].update({"eval_interval": 8, "checkpoint_interval": 8})
    path = tmp_path / "killtest.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _ceiling(*args: str, **kwargs) -> list[str]:
    return [sys.executable, "-c", "from orchestrator.cli import main; main()", *args]


def test_sigkill_then_resume_finishes_every_trial_once(tmp_path: Path):
    spec_path, workdir = _spec(tmp_path), tmp_path / "work"
    env = {**os.environ, "COLUMNS": "120"}
    run_output = tmp_path / "run.out"
    with run_output.open("w") as output:
        process = subprocess.Popen(
            _ceiling("run", str(spec_path), "--workdir", str(workdir)),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    db = workdir / "ceiling.db"
    deadline = time.time() + 240
    killed_running: set[str] = set()
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            if not db.exists():
                continue
            store = Store.open(f"sqlite:///{db}", create=False)
            try:
                trials = store.trials("killtest")
            except Exception:
                continue  # tables not created yet
            finally:
                store.close()
            running = [t for t in trials if t.status == "running" and t.steps_done >= 8]
            if running and any(t.status == "done" for t in trials):
                killed_running = {t.id for t in trials if t.status == "running"}
                break
        assert process.poll() is None, "the sweep finished before it could be killed; make the trials longer"
        assert killed_running, "no trial reached a checkpoint while another was done within the time limit"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    store = Store.open(f"sqlite:///{db}")
    before = {t.id: t for t in store.trials("killtest")}
    assert any(t.status == "running" for t in before.values())  # the kill left work unfinished

    resumed = subprocess.run(
        _ceiling("resume", "killtest", "--workdir", str(workdir)),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # MLflow's, alembic's and Ray's log lines went to the work folder's log, not the terminal.
    printed = run_output.read_text() + resumed.stdout + resumed.stderr
    log = (workdir / "ceiling.log").read_text()
    for chatter in ("Creating initial MLflow database tables", "alembic"):
        assert chatter not in printed and chatter in log, chatter
    assert "Token authentication" not in printed and "INFO mlflow" not in printed
    assert "status: 4 done" in resumed.stdout  # counts in words, not a dict

    after = store.trials("killtest")
    assert len(after) == 4 and all(t.status == "done" for t in after)
    for trial in after:
        # Trials finished before the kill were not run again; interrupted ones took exactly one more attempt.
        if before[trial.id].status == "done":
            assert trial.attempts == 1
        elif trial.id in killed_running:
            # Usually the resume reruns it (one more attempt, from its newest checkpoint). A worker of the
            # killed run may still commit the final record of its own, still current, attempt before
            # Ray reaps it; then the resume has nothing left to do. Either way: done, exactly once.
            assert trial.attempts in (before[trial.id].attempts, before[trial.id].attempts + 1)
            if trial.attempts > before[trial.id].attempts:
                assert trial.final_metrics["resumed_from_step"] >= 8
        rows = store.evals([trial.id], "val_loss")
        steps = [r.step for r in rows]
        assert steps == sorted({0, *range(8, trial.steps_total + 1, 8), trial.steps_total}), trial.id
        assert len(store.evals([trial.id], "val_bpb")) == len(steps)  # nothing doubled
    assert not list((workdir / "checkpoints").glob("*/latest")), "finished trials leave no checkpoint behind"
