"""SIGKILL a training worker mid-trial: the trial is retried from its checkpoint and finishes with the
loss an uninterrupted run with the same seed reaches."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.scheduling.runner import prepare_sweep, run_sweep
from orchestrator.spec import parse_spec

pytestmark = pytest.mark.slow

SPEC = {
    "name": "crash",
    "architectures": ["transformer"],
    "sizes": ["30k"],
    "budgets": {"tokens": [160 * 1024]},  # 160 steps
    "data": {"seq_len": 64, "val_tokens": 4096},
    "training": {
        "batch_tokens": 1024,
        "precision": "fp32",
        "eval_interval": 20,
        "log_interval": 5,
        "lr": 3e-3,
    },
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1, "retries": 2},
}


def _sweep(workdir: Path):
    console = Console(stderr=True, quiet=True)
    context = prepare_sweep(
        parse_spec(SPEC),
        workdir=workdir,
        db_url=f"sqlite:///{workdir / 'c.db'}",
        tracking_uri=None,
        console=console,
    )
    return context, console


def test_killed_worker_is_retried_from_its_checkpoint(ray_runtime, tmp_path: Path):
    context, console = _sweep(tmp_path / "crash")
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.update(run_sweep(context, address=None, console=console))
    )
    runner.start()
    killed_pid = None
    deadline = time.time() + 120
    while time.time() < deadline and runner.is_alive():
        (trial,) = context.store.trials("crash")
        if trial.status == "running" and trial.steps_done >= 30 and trial.worker:
            killed_pid = int(trial.worker.rsplit(":", 1)[1])
            os.kill(killed_pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    runner.join(timeout=300)
    assert killed_pid is not None, "the trial finished before the worker could be killed"
    assert outcome["outcomes"] == {"done": 1} and outcome["retries"] == 1

    (trial,) = context.store.trials("crash")
    assert trial.status == "done" and trial.attempts == 2
    assert trial.final_metrics["resumed_from_step"] >= 20  # from the checkpoint, not from scratch
    assert int(trial.worker.rsplit(":", 1)[1]) != killed_pid  # a fresh worker took over
    steps = [row.step for row in context.store.evals([trial.id], "val_loss")]
    assert steps == list(range(0, 161, 20))

    reference, _ = _sweep(tmp_path / "reference")
    run_sweep(reference, address=None, console=console)
    (uninterrupted,) = reference.store.trials("crash")
    assert uninterrupted.id == trial.id
    assert trial.final_val_loss == pytest.approx(uninterrupted.final_val_loss, rel=1e-3)
