"""Helpers for tests that run tiny sweeps through the real `ceiling run` in child processes.

Shared by the multi-node, node-removal, store-restart and concurrent-sweep tests: each writes a spec,
starts `ceiling run --json` (bounded by `timeout`), and checks that every trial landed exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from orchestrator.store import Store
from orchestrator.store.schema import Eval, Trial

CEILING = str(Path(sys.executable).with_name("ceiling"))  # the console script of this environment


def sweep(
    name: str,
    *,
    zero_stage: int = 0,
    sizes: tuple[str, ...] = ("20k",),
    seeds: tuple[int, ...] = (0,),
    workers: int = 1,
    placement: str = "pack",
    tokens: int = 4096,
    concurrent: int = 1,
    eval_interval: int = 8,
    checkpoint_interval: int | None = None,
) -> dict[str, Any]:
    """A tiny Transformer sweep: steps of 256 tokens (4096 tokens = 16 steps), evaluated every
    ``eval_interval`` steps and checkpointed every ``checkpoint_interval`` (default: at each eval)."""
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": list(sizes),
        "seeds": list(seeds),
        "budgets": {"tokens": [tokens]},
        "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 32, "val_tokens": 2048},
        "training": {
            "batch_tokens": 256,
            "micro_batch_size": 4,
            "precision": "fp32",
            "eval_interval": eval_interval,
            "checkpoint_interval": checkpoint_interval,
        },
        "resources": {
            "workers_per_trial": workers,
            "cpus_per_worker": 1,
            "max_concurrent_trials": concurrent,
            "retries": 2,
            "placement": placement,
        },
        "deepspeed": {"zero_stage": zero_stage},
    }


class SweepProcess:
    """A `ceiling run --json` in its own process, its stdout and stderr going to files.

    Files, not pipes: Ray forwards every worker's log lines (DeepSpeed prints plenty) to the driver's
    output, and a pipe nobody reads until the end fills at 64 KiB and blocks the driver mid-sweep.
    """

    def __init__(self, command: list[str], folder: Path, name: str, env: dict[str, str]):
        self.stdout_path, self.stderr_path = folder / f"{name}.out", folder / f"{name}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )

    def poll(self) -> int | None:
        return self.process.poll()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill it if it still runs (the tests' cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def check_alive(self, waiting_for: str) -> None:
        """Raise, with its output, if the run has already exited while a test waits for ``waiting_for``."""
        if self.process.poll() is not None:
            raise AssertionError(
                f"`ceiling run` exited {self.process.returncode} before {waiting_for}:\n{self.stderr()[-4000:]}"
            )


def start_run(
    spec: dict[str, Any],
    folder: Path,
    db: str,
    *,
    address: str | None = None,
    env: dict[str, str] | None = None,
) -> SweepProcess:
    """`ceiling run SPEC --json --db DB [--address A]` in its own process."""
    spec_file = folder / f"{spec['name']}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    command = ["timeout", "-k", "10", "400", CEILING, "run", str(spec_file)]
    command += ["--workdir", str(folder / spec["name"]), "--db", db, "--json"]
    command += ["--address", address] if address else []
    return SweepProcess(command, folder, spec["name"], {**os.environ, **(env or {})})


def finish(run: SweepProcess, timeout: float = 420) -> dict[str, Any]:
    """Wait for a `ceiling run --json`; it must exit 0. Returns its summary."""
    run.wait(timeout=timeout)
    assert run.returncode == 0, run.stderr()[-4000:]
    return json.loads(run.stdout_path.read_text())


def wait_for_trial(
    db: str, name: str, run: SweepProcess, ready: Callable[[Trial], bool], what: str, timeout_s: float = 240
) -> Trial:
    """Poll the store until a trial of sweep ``name`` satisfies ``ready``; fail with the run's output
    if the run exits first or nothing is ready within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run.check_alive(what)
        try:
            store = Store.open(db, create=False)
        except Exception:  # the run is still creating the store
            time.sleep(0.3)
            continue
        try:
            found = next((t for t in store.trials(name) if ready(t)), None)
        except Exception:  # tables not there yet, or the server is briefly away
            found = None
        finally:
            store.close()
        if found is not None:
            return found
        time.sleep(0.3)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s; the run's log ends:\n{run.stderr()[-3000:]}")


def checkpointed_step(root: Path, trial_id: str) -> int:
    """The step of a trial's newest rolling checkpoint anywhere under ``root`` (its `latest` tag), or -1.

    A test that must interrupt a trial mid-training waits on this rather than on the store's
    ``steps_done``: heartbeats come every 2 s, and a tiny trial can finish between two of them.
    """
    for latest in root.rglob(f"{trial_id}/latest"):
        try:
            return int(latest.read_text().strip().removeprefix("step"))
        except (OSError, ValueError):  # being written, or already cleaned up
            return -1
    return -1


def assert_each_done_once(db: str, sweep_name: str, *, trials: int, evals_per_trial: int) -> list[Trial]:
    """Every trial of the sweep is `done` and stored once, with ``evals_per_trial`` val_loss rows and
    no (trial, step, metric) stored twice. Returns the trials."""
    store = Store.open(db, create=False)
    try:
        rows = store.trials(sweep_name)
        assert len(rows) == trials, [(t.label, t.status) for t in rows]
        assert {t.status for t in rows} == {"done"}, [(t.label, t.status, t.error) for t in rows]
        ids = [t.id for t in rows]
        with store.session() as session:
            stored = session.scalar(select(func.count()).select_from(Trial).where(Trial.id.in_(ids)))
            doubled = session.scalar(
                select(func.count()).select_from(
                    select(Eval.trial_id)
                    .where(Eval.trial_id.in_(ids))
                    .group_by(Eval.trial_id, Eval.step, Eval.metric)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
        assert stored == trials and doubled == 0
        for trial in rows:
            assert len(store.evals([trial.id], "val_loss")) == evals_per_trial, trial.label
        return rows
    finally:
        store.close()
