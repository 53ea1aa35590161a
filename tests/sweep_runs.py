"""Helpers for tests that run tiny sweeps through the real `ceiling run` in child processes.

Shared by the multi-node, node-removal, store-restart and concurrent-sweep tests: each writes a spec,
starts `ceiling run --json` (bounded by `timeout`), and checks that every trial landed exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
) -> dict[str, Any]:
    """A tiny Transformer sweep: steps of 256 tokens (4096 tokens = 16 steps), evaluated and
    checkpointed every 8 steps."""
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": list(sizes),
        "seeds": list(seeds),
        "budgets": {"tokens": [tokens]},
        "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 32, "val_tokens": 2048},
        "training": {"batch_tokens": 256, "micro_batch_size": 4, "precision": "fp32", "eval_interval": 8},
        "resources": {
            "workers_per_trial": workers,
            "cpus_per_worker": 1,
            "max_concurrent_trials": concurrent,
            "retries": 2,
            "placement": placement,
        },
        "deepspeed": {"zero_stage": zero_stage},
    }


def start_run(
    spec: dict[str, Any],
    folder: Path,
    db: str,
    *,
    address: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """`ceiling run SPEC --json --db DB [--address A]` in its own process; returns the Popen."""
    spec_file = folder / f"{spec['name']}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    command = ["timeout", "-k", "10", "400", CEILING, "run", str(spec_file)]
    command += ["--workdir", str(folder / spec["name"]), "--db", db, "--json"]
    command += ["--address", address] if address else []
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a `ceiling run --json`; it must exit 0. Returns its summary."""
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-4000:]
    return json.loads(stdout)


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
