"""Sweeps on a real multi-node Ray cluster (a head and two worker nodes on this machine).

Each trial is 2-worker data-parallel DeepSpeed on CPU (gloo), placed STRICT_SPREAD so its two ranks
sit on different nodes and all-reduce across them. Two `ceiling run` processes, one ZeRO-2 sweep
(`--address`) and one ZeRO-3 sweep (`RAY_ADDRESS`), run at the same time against one Postgres store:
both must finish, every trial `done` exactly once, with one set of eval rows.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.loopback_cluster import LoopbackCluster
from tests.sweep_runs import assert_each_done_once, finish, start_run, sweep

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_zero2_and_zero3_sweeps_spread_over_two_nodes_at_once(postgres_url: str, tmp_path: Path):
    started = time.monotonic()
    with LoopbackCluster(workers=2, cpus_per_worker=2) as cluster:
        spread = {"workers": 2, "placement": "strict_spread"}
        zero2 = start_run(
            sweep("mn-zero2", zero_stage=2, **spread), tmp_path, postgres_url, address=cluster.address
        )
        zero3 = start_run(
            sweep("mn-zero3", zero_stage=3, **spread),
            tmp_path,
            postgres_url,
            env={"RAY_ADDRESS": cluster.address},
        )
        summaries = [finish(zero2), finish(zero3)]
        placed = cluster.actor_nodes()
    elapsed = time.monotonic() - started

    for summary in summaries:
        assert summary["outcomes"] == {"done": 1} and summary["retries"] == 0, summary
    # Four worker actors (two per sweep), two on each node: every trial's ranks on different nodes.
    assert sorted(placed) == sorted(cluster.node_ids * 2)
    for name, stage in (("mn-zero2", 2), ("mn-zero3", 3)):
        (trial,) = assert_each_done_once(postgres_url, name, trials=1, evals_per_trial=3)  # steps 0, 8, 16
        assert trial.trial_config.deepspeed.zero_stage == stage
        assert sorted(trial.final_metrics["nodes"]) == sorted(n[:12] for n in cluster.node_ids)
        assert trial.final_val_loss < 5.0  # ln(256) = 5.55 at the start: it trained
    print(f"multinode: two concurrent sweeps on 2 nodes in {elapsed:.0f} s")
