"""The queue runner's process handling, with a stand-in for `ceiling resume` (no Ray): a sweep runs as
a child, its exit code decides done or failed, cancel interrupts a running child, and a sweep left
`running` by a killed server is started again."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from orchestrator.api.queue_runner import QueueRunner
from orchestrator.api.settings import ServiceSettings
from orchestrator.store import Store, service_queue

# Exits with the code in its sweep's name (sweep "exit-0" -> 0) after a moment; "wait-*" sleeps until
# interrupted, and exits 130 on SIGINT as the CLI does (its runner releases its trials first).
STAND_IN = """
import sys, time
name = sys.argv[1]
try:
    if name.startswith("exit-"):
        time.sleep(0.3)
        sys.exit(int(name.split("-")[1]))
    print("ready", flush=True)
    time.sleep(120)
except KeyboardInterrupt:
    sys.exit(130)
"""

# The warm driver's stand-in: started ahead, it waits for a sweep name on stdin, writes to the sweep's
# log from then on, and runs the stand-in above in its own process (as orchestrator/api/warm_driver.py
# runs `ceiling resume NAME`). End of input: exits 0.
STAND_IN_SPARE = (
    """
import os, sys
log_dir = sys.argv[1]
print("warm", os.getpid(), flush=True)
name = sys.stdin.readline().strip()
if not name:
    sys.exit(0)
fd = os.open(os.path.join(log_dir, name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
os.dup2(fd, 1)
os.dup2(fd, 2)
sys.argv = ["stand-in", name]
"""
    + STAND_IN
)


class StandInRunner(QueueRunner):
    def command(self, name: str) -> list[str]:
        return [sys.executable, "-c", STAND_IN, name]

    def spare_command(self) -> list[str]:
        return [sys.executable, "-c", STAND_IN_SPARE, str(self.log_dir)]


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(f"sqlite:///{tmp_path / 'queue.db'}")
    yield opened
    opened.close()


def _submit(store: Store, name: str, owner: str = "alice") -> None:
    service_queue.submit(store, name=name, spec={}, spec_hash=name, owner=owner, trials=1)


def _runner(store: Store, tmp_path: Path, slots: int, warm_driver: bool = False) -> StandInRunner:
    settings = ServiceSettings(
        db_url=store.url, workdir=tmp_path, max_running_sweeps=slots, warm_driver=warm_driver
    )
    return StandInRunner(store, settings)


def _until(runner: QueueRunner, store: Store, name: str, status: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runner.tick()
        if service_queue.get(store, name).status == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} is {service_queue.get(store, name).status}, not {status}")


def test_exit_codes_decide_done_or_failed(store: Store, tmp_path: Path):
    for name in ("exit-0", "exit-1", "exit-3"):
        _submit(store, name)
    runner = _runner(store, tmp_path, slots=3)
    runner.tick()
    assert {e.status for e in service_queue.entries(store)} == {"running"}
    _until(runner, store, "exit-0", "done")
    _until(runner, store, "exit-1", "failed")
    _until(runner, store, "exit-3", "failed")
    assert "did not finish" in service_queue.get(store, "exit-1").error
    assert "exited with code 3" in service_queue.get(store, "exit-3").error
    assert not runner.running


def test_cancel_interrupts_a_running_sweep_and_a_restart_resumes_the_others(store: Store, tmp_path: Path):
    _submit(store, "wait-cancelled")
    _submit(store, "wait-resumed", owner="bob")
    runner = _runner(store, tmp_path, slots=1)
    runner.tick()
    assert set(runner.running) == {"wait-cancelled"}  # one slot; the other waits its turn
    child = runner.running["wait-cancelled"].process
    log = runner.running["wait-cancelled"].log_path
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text() and time.monotonic() < deadline:  # its SIGINT handler is in place
        time.sleep(0.1)
    assert service_queue.cancel(store, "wait-cancelled").status == "cancelled"  # at once, as the API says
    deadline = time.monotonic() + 20
    while child.poll() is None and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.1)
    assert child.returncode == 130  # SIGINT: the runner's trials were released, not killed mid-write
    runner.tick()
    assert set(runner.running) == {"wait-resumed"}
    assert service_queue.get(store, "wait-cancelled").status == "cancelled"

    # The server dies: its child dies with it (here: killed by hand), the store still says running.
    orphan = runner.running.pop("wait-resumed").process
    orphan.kill()
    orphan.wait()
    restarted = _runner(store, tmp_path, slots=1)
    restarted.tick()
    assert set(restarted.running) == {"wait-resumed"}
    assert service_queue.get(store, "wait-resumed").status == "running"
    restarted.stop(timeout_s=30)  # a polite stop leaves it running in the store, to resume next time
    assert service_queue.get(store, "wait-resumed").status == "running"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except OSError:
        return False


def test_the_warm_driver_runs_the_next_sweep_is_replaced_and_stops_with_the_runner(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from orchestrator.api import queue_runner

    monkeypatch.setattr(queue_runner, "SPARE_AFTER_START_S", 0.5)  # not 10 s: a test, not a busy box
    runner = _runner(store, tmp_path, slots=1, warm_driver=True)
    runner.tick()
    spare = runner.spare
    assert spare is not None and spare.poll() is None  # started ahead, with nothing queued

    _submit(store, "exit-0")
    runner.tick()
    assert runner.running["exit-0"].process is spare and runner.spares_used == 1  # handed the sweep
    assert runner.spare is None  # the next one waits until this sweep is past its start-up
    _until(runner, store, "exit-0", "done")  # its exit code decides, as a cold process's does
    assert "warm" not in (tmp_path / "service-logs" / "exit-0.log").read_text()  # its own log from then on
    time.sleep(0.6)
    runner.tick()
    assert runner.spare is not None and runner.spare.pid != spare.pid  # replaced

    _submit(store, "exit-1")
    _until(runner, store, "exit-1", "failed")
    assert runner.spares_used == 2
    _submit(store, "wait-cancelled")
    time.sleep(0.6)
    runner.tick()
    child = runner.running["wait-cancelled"]
    assert runner.spares_used == 3
    deadline = time.monotonic() + 30
    # (the driver opens the sweep's log itself once it has read the name)
    while time.monotonic() < deadline and not (
        child.log_path.exists() and "ready" in child.log_path.read_text()
    ):
        time.sleep(0.1)
    service_queue.cancel(store, "wait-cancelled")
    deadline = time.monotonic() + 20
    while child.process.poll() is None and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.1)
    assert child.process.returncode == 130  # SIGINT reaches a sweep run by a warm driver too

    # The server's own life cycle: a spare started by the runner's thread stops with it.
    threaded = _runner(store, tmp_path, slots=1, warm_driver=True)
    threaded.start()
    deadline = time.monotonic() + 30
    while threaded.spare is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threaded.spare is not None
    pid = threaded.spare.pid
    threaded.stop(timeout_s=30)
    assert threaded.spare is None and not _alive(pid)
    time.sleep(0.6)
    runner.tick()
    idle = runner.spare  # the first runner's spare: end of input (its server gone) and it leaves
    assert idle is not None and idle.stdin is not None
    idle.stdin.close()
    assert idle.wait(10) == 0
