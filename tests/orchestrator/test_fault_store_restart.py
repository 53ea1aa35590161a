"""Fault: the store's Postgres server goes away for a few seconds in the middle of a sweep.

The test runs its own Postgres server (initdb into a temporary folder, a free port), so stopping it
cannot break other tests sharing the machine's server. Once trials are training, the server is
stopped (fast shutdown: every session is terminated), kept down for a few seconds and started again.
The driver's and the workers' writes must be retried, the sweep must finish, and every trial and
eval row must be stored exactly once. The server is stopped at the end whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.training.distributed import free_port
from tests.sweep_runs import (
    assert_each_done_once,
    checkpointed_step,
    finish,
    start_run,
    sweep,
    wait_for_trial,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOWN_S = 4.0


class PrivatePostgres:
    """A throw-away Postgres server owned by this test (trust auth, listening on 127.0.0.1:port)."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        # Postgres refuses to run as root: run its tools as the postgres user when we are root.
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # No pipes: the server that `pg_ctl start` leaves behind would hold them open forever.
        subprocess.run(
            ["timeout", str(int(timeout)), *as_user, *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no Postgres 15 server binaries under {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))  # short: the socket path has a length cap
    server = PrivatePostgres(folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            if server.running():
                server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def test_a_store_restart_mid_sweep_loses_and_doubles_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
):
    url = private_postgres.url
    # 3 trials of 128 steps, evaluated every 32 and checkpointed every 16: long enough to be caught mid-run
    spec = sweep(
        "store-restart", seeds=(0, 1, 2), tokens=32768, concurrent=2, eval_interval=32, checkpoint_interval=16
    )
    started = time.monotonic()
    run = start_run(spec, tmp_path, url)
    try:
        wait_for_trial(
            url,
            "store-restart",
            run,
            lambda t: t.status == "running" and checkpointed_step(tmp_path, t.id) >= 16,
            "trial training",
        )
        down_at = time.monotonic()
        private_postgres.stop()
        time.sleep(DOWN_S)
        private_postgres.start()
        outage = time.monotonic() - down_at
        summary = finish(run)
    finally:
        run.stop()
    stderr = run.stderr()
    elapsed = time.monotonic() - started

    assert summary["outcomes"] == {"done": 3}, summary
    trials = assert_each_done_once(url, "store-restart", trials=3, evals_per_trial=5)  # steps 0, 32, .., 128
    assert all(t.steps_done == 128 and t.final_val_loss is not None for t in trials)
    driver_retries = stderr.count("store unreachable")
    print(
        f"store restart: outage {outage:.1f} s, sweep {elapsed:.0f} s, driver write retries {driver_retries}, "
        f"trial retries {summary['retries']}, attempts {[t.attempts for t in trials]}"
    )
