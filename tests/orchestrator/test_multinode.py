"""Sweeps on a real multi-node Ray cluster (a head and two worker nodes on this machine).

Each trial is 2-worker data-parallel DeepSpeed on CPU (gloo), placed STRICT_SPREAD so its two ranks
sit on different nodes and all-reduce across them. Two `ceiling run` processes, one ZeRO-2 sweep
(`--address`) and one ZeRO-3 sweep (`RAY_ADDRESS`), run at the same time against one Postgres store:
both must finish, every trial `done` exactly once, with one set of eval rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from orchestrator.store import Store
from tests.loopback_cluster import LoopbackCluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLI = [str(Path(sys.executable).with_name("ceiling"))]  # the console script of this environment


def sweep(name: str, *, zero_stage: int, sizes: list[str], workers: int = 2, placement: str = "strict_spread",
          tokens: str = "4096", concurrent: int = 1) -> dict:
    """A tiny Transformer sweep: 16 steps of 256 tokens per trial, evaluated every 8."""
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": sizes,
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


def start_run(spec: dict, folder: Path, db: str, *, address: str | None, env: dict | None = None):
    """`ceiling run SPEC --json` in its own process (bounded by `timeout`); returns the Popen."""
    spec_file = folder / f"{spec['name']}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    command = ["timeout", "-k", "10", "400", *CLI, "run", str(spec_file), "--workdir", str(folder / spec["name"])]
    command += ["--db", db, "--json"] + (["--address", address] if address else [])
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finish(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-4000:]
    return json.loads(stdout)


def assert_each_done_once(db: str, sweep_name: str, trials: int, metrics_per_trial: int) -> list:
    """Every trial of the sweep is `done`, stored once, with one eval row per (step, metric)."""
    store = Store.open(db, create=False)
    try:
        rows = store.trials(sweep_name)
        assert len(rows) == trials and {t.status for t in rows} == {"done"}, [(t.label, t.status) for t in rows]
        with store.session() as session:
            ids = {"ids": [t.id for t in rows]}
            stored = session.execute(
                text("SELECT count(*) FROM trials WHERE id = ANY(:ids)"), ids
            ).scalar_one()
            doubled = session.execute(
                text(
                    "SELECT count(*) FROM (SELECT trial_id, step, metric FROM evals WHERE trial_id = ANY(:ids) "
                    "GROUP BY trial_id, step, metric HAVING count(*) > 1) AS d"
                ),
                ids,
            ).scalar_one()
        assert stored == trials and doubled == 0
        for trial in rows:
            assert len(store.evals([trial.id], "val_loss")) == metrics_per_trial
        return rows
    finally:
        store.close()


def test_zero2_and_zero3_sweeps_spread_over_two_nodes_at_once(postgres_url: str, tmp_path: Path):
    started = time.monotonic()
    with LoopbackCluster(workers=2, cpus_per_worker=2) as cluster:
        zero2 = start_run(sweep("mn-zero2", zero_stage=2, sizes=["20k"]), tmp_path, postgres_url,
                          address=cluster.address)
        zero3 = start_run(sweep("mn-zero3", zero_stage=3, sizes=["20k"]), tmp_path, postgres_url,
                          address=None, env={"RAY_ADDRESS": cluster.address})
        summaries = [finish(zero2), finish(zero3)]
        placed = cluster.actor_nodes()
    elapsed = time.monotonic() - started

    for summary in summaries:
        assert summary["outcomes"] == {"done": 1} and summary["retries"] == 0, summary
    # Four worker actors (two per sweep), and each trial's two ranks on the two different nodes.
    assert sorted(placed) == sorted(cluster.node_ids * 2)
    for name, stage in (("mn-zero2", 2), ("mn-zero3", 3)):
        (trial,) = assert_each_done_once(postgres_url, name, trials=1, metrics_per_trial=3)  # steps 0, 8, 16
        assert trial.config["deepspeed"]["zero_stage"] == stage
        assert len(set(trial.final_metrics["nodes"])) == 2
        assert trial.final_val_loss < 5.0
    print(f"multinode: two concurrent sweeps on 2 nodes in {elapsed:.0f} s")
