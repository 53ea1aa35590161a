"""Two different sweeps run at once by two `ceiling run` processes against one SQLite store.

SQLite is the default store, and its one file is the hardest case for concurrent writers: both
drivers and all their workers write trials, heartbeats and evals through it (WAL, busy timeout, and
retries on "database is locked"). Both sweeps must finish, each trial `done` once with one set of
evals, and neither sweep may touch the other's trials. (The Postgres case runs in test_multinode.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.store import Store
from tests.factories import make_trial
from tests.loopback_cluster import LoopbackCluster
from tests.sweep_runs import assert_each_done_once, finish, start_run, sweep


@pytest.mark.slow
def test_two_sweeps_at_once_on_one_sqlite_store(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first = sweep("concurrent-a", seeds=(0, 1))
    second = sweep("concurrent-b", sizes=("30k",), seeds=(0, 1))  # different sizes: no shared trial
    started = time.monotonic()
    with LoopbackCluster(workers=1, cpus_per_worker=2) as cluster:
        runs = [start_run(spec, tmp_path, db, address=cluster.address) for spec in (first, second)]
        summaries = [finish(run) for run in runs]
    elapsed = time.monotonic() - started

    for summary in summaries:
        assert summary["planned"] == summary["new"] == 2, summary
        assert summary["outcomes"] == {"done": 2} and summary["retries"] == 0, summary
    a = assert_each_done_once(db, "concurrent-a", trials=2, evals_per_trial=3)
    b = assert_each_done_once(db, "concurrent-b", trials=2, evals_per_trial=3)
    assert not {t.id for t in a} & {t.id for t in b}
    assert all(t.attempts == 1 for t in a + b)  # nobody claimed another sweep's trial
    print(f"concurrent sweeps: 2 x 2 trials on one SQLite store in {elapsed:.0f} s")


def test_a_trial_another_sweep_finished_is_not_claimed_again(store_url: str):
    # Trials are content-addressed, so two sweeps can share one; once either run finishes it, the
    # other's claim must leave it alone instead of training it a second time.
    store = Store.open(store_url)
    try:
        shared = make_trial("e" * 16)
        for name in ("one", "two"):
            store.upsert_sweep(name, {"name": name}, workdir="/tmp/w", code_version="test")
            store.add_trials(name, [shared])
        attempt = store.claim("e" * 16, unless_final=True)
        store.finish("e" * 16, attempt, final_val_loss=3.0)
        assert store.claim("e" * 16, unless_final=True) is None
        trial = store.get_trial("e" * 16)
        assert (trial.status, trial.attempts) == ("done", 1)
    finally:
        store.close()
