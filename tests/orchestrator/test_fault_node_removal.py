"""Fault: a worker node is lost mid-sweep (its raylet and workers killed without warning).

Two worker nodes of one CPU each, a sweep of three 1-worker trials, two at a time. Once a trial has
passed its first checkpoint, the node running it is removed. Its trial must be retried on the one
node left (the replacement worker group waits for the other group's CPU instead of hanging the
sweep), resume from its checkpoint, and every trial must end `done` exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.store import StaleAttempt, Store
from tests.factories import make_trial
from tests.loopback_cluster import LoopbackCluster
from tests.sweep_runs import (
    assert_each_done_once,
    checkpointed_step,
    finish,
    start_run,
    sweep,
    wait_for_trial,
)


@pytest.mark.slow
def test_a_lost_node_s_trial_is_rescheduled_on_the_remaining_node(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    # 3 trials of 128 steps, evaluated every 32 and checkpointed every 16: long enough to be caught mid-run
    spec = sweep(
        "lost-node", seeds=(0, 1, 2), tokens=32768, concurrent=2, eval_interval=32, checkpoint_interval=16
    )
    with LoopbackCluster(workers=2, cpus_per_worker=1) as cluster:
        started = time.monotonic()
        run = start_run(spec, tmp_path, db, address=cluster.address)
        try:
            running = wait_for_trial(
                db,
                "lost-node",
                run,
                lambda t: (
                    t.status == "running" and bool(t.worker) and checkpointed_step(tmp_path, t.id) >= 16
                ),
                "trial past its first checkpoint",
            )
            victim, pid = running.id, int(running.worker.rsplit(":", 1)[1])
            (lost,) = {a["node"] for a in cluster.actors() if a["pid"] == pid and a["state"] == "ALIVE"}
            cluster.remove_node(cluster.node_ids.index(lost))
            removed_at = time.monotonic()
            summary = finish(run)
        finally:
            run.stop()
        elapsed = time.monotonic() - started
        placed = cluster.actors()

    assert summary["outcomes"] == {"done": 3} and summary["retries"] == 1, summary
    trials = {t.id: t for t in assert_each_done_once(db, "lost-node", trials=3, evals_per_trial=5)}
    (survivor,) = set(cluster.node_ids) - {lost}
    rerun = trials[victim]
    assert rerun.attempts == 2
    assert rerun.final_metrics["nodes"] == [survivor[:12]]  # finished on the node that is left
    assert rerun.final_metrics["resumed_from_step"] >= 16  # from its checkpoint, not from scratch
    assert {t.attempts for t in trials.values() if t.id != victim} == {1}
    assert all(a["node"] == survivor for a in placed if a["state"] == "ALIVE") or not any(
        a["state"] == "ALIVE" for a in placed
    )
    print(f"node removal: sweep {elapsed:.0f} s, {time.monotonic() - removed_at:.0f} s after the loss")


def test_a_trial_whose_worker_died_after_committing_done_is_not_released(store_url: str):
    # The node can die between the worker's final commit and its reply to the driver: the driver then
    # sees a dead actor, but the trial is done and must stay done (not go round again from scratch).
    store = Store.open(store_url)
    try:
        store.upsert_sweep("s", {"name": "s"}, workdir="/tmp/w", code_version="test")
        store.add_trials("s", [make_trial("d" * 16)])
        attempt = store.claim("d" * 16)
        store.finish("d" * 16, attempt, final_val_loss=3.0)
        with pytest.raises(StaleAttempt):
            store.release("d" * 16, attempt, "actor died")
        trial = store.get_trial("d" * 16)
        assert (trial.status, trial.attempts, trial.final_val_loss) == ("done", 1, 3.0)
    finally:
        store.close()
