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


class StandInRunner(QueueRunner):
    def command(self, name: str) -> list[str]:
        return [sys.executable, "-c", STAND_IN, name]


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(f"sqlite:///{tmp_path / 'queue.db'}")
    yield opened
    opened.close()


def _submit(store: Store, name: str, owner: str = "alice") -> None:
    service_queue.submit(store, name=name, spec={}, spec_hash=name, owner=owner, trials=1)


def _runner(store: Store, tmp_path: Path, slots: int) -> StandInRunner:
    return StandInRunner(store, ServiceSettings(db_url=store.url, workdir=tmp_path, max_running_sweeps=slots))


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
