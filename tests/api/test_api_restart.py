"""SIGKILL of `ceiling serve` mid-sweep and mid-queue, then a restart: every sweep finishes, every trial
is done exactly once (a trial finished before the kill is not trained again). The fair policy itself
is tested without Ray in test_queue_policy.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tests.api.server import Server, make_token

pytestmark = pytest.mark.slow
FINISH_TIMEOUT_S = 300.0  # leave room for a busy machine


def _spec(examples: Path, name: str, budgets: list[str]) -> dict:
    spec = yaml.safe_load((examples / "smoke.yaml").read_text())
    # One small size, a short validation set: the test is about processes and the store, not training.
    data = spec["data"] | {"val_tokens": 4096}
    return spec | {"name": name, "sizes": ["20k"], "budgets": {"tokens": budgets}, "data": data}


def _trials(db_url: str) -> dict[str, dict]:
    from orchestrator.store import Store

    store = Store.open(db_url)
    try:
        return {
            t.id: {
                "status": t.status,
                "finished_at": t.finished_at,
                "attempts": t.attempts,
                "steps": t.steps_done,
            }
            for t in store.trials()
        }
    finally:
        store.close()


def _children_of(workdir: Path) -> list[int]:
    """Sweep processes (cold or warm drivers, handed a sweep or waiting) whose command line names this
    work folder."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                command = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if str(workdir) in command and ("resume" in command or "warm_driver" in command):
                found.append(int(pid))
    return found


def _wait(predicate, timeout_s: float, what: str, server: Server):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; server log:\n{server.log[-4000:]}")


def test_sigkill_mid_sweep_and_mid_queue_then_restart(tmp_path: Path, examples: Path, ray_runtime):
    db_url = f"sqlite:///{tmp_path / 'ceiling.db'}"
    alice, bob = make_token(db_url, "alice"), make_token(db_url, "bob")
    # The sweeps join the test session's Ray (as a team's server joins its cluster): no Ray start-up each.
    ray_address = ("--address", ray_runtime.get_runtime_context().gcs_address)
    server = Server(tmp_path, db_url, max_running_sweeps=1, extra=ray_address).start()
    try:
        submitted = {}
        for name, owner, budgets in (
            ("first", alice, ["16k", "64k"]),  # two trials side by side, one four times as long
            ("bob-only", bob, ["24k"]),  # budgets differ: trials are content-addressed, shared if equal
        ):
            answer = server.request("POST", "/v1/sweeps", owner, json=_spec(examples, name, budgets))
            assert answer.status_code == 201, answer.text
            submitted[name] = answer.json()["trials"]

        def first_half_done() -> bool:  # the short trial is done while the long one is mid-way
            states = sorted(t["status"] for t in _trials(db_url).values())
            return states.count("done") == 1 and "running" in states

        _wait(first_half_done, FINISH_TIMEOUT_S, "the first sweep's short trial", server)
        before = _trials(db_url)
        server.kill()
        _wait(lambda: not _children_of(tmp_path), 15, "the sweep processes to die with the server", server)
        queue = {s["sweep"]: s["status"] for s in _queue(db_url)}
        assert queue == {"first": "running", "bob-only": "queued"}

        # The first server handed its first sweep to the warm driver waiting for it (queue_runner.py).
        assert "sweep first runs in the warm driver" in server.log
        # Two slots after the restart: the resumed sweep and the one queued at the kill run side by side
        # (what is checked is that both finish, each trial once; the fair order is test_queue_policy's).
        server = Server(tmp_path, db_url, port=server.port, max_running_sweeps=2, extra=ray_address).start()

        def all_finished() -> list[dict] | None:
            entries = _queue(db_url)
            return entries if all(e["status"] in ("done", "failed", "cancelled") for e in entries) else None

        entries = _wait(all_finished, FINISH_TIMEOUT_S, "every sweep to finish", server)
        assert {e["sweep"]: e["status"] for e in entries} == dict.fromkeys(submitted, "done")
        after = _trials(db_url)
        assert len(after) == sum(submitted.values()) and all(t["status"] == "done" for t in after.values())
        for trial_id, old in before.items():
            if old["status"] == "done":  # done before the kill: not trained again
                assert after[trial_id]["finished_at"] == old["finished_at"]
                assert after[trial_id]["attempts"] == old["attempts"] == 1
        assert "Traceback" not in server.log
    finally:
        server.stop()
    assert not _children_of(tmp_path)  # a polite stop ends the waiting warm driver too


def _queue(db_url: str) -> list[dict]:
    from orchestrator.store import Store, service_queue

    store = Store.open(db_url)
    try:
        return [
            {"sweep": e.name, "status": e.status, "started_at": e.started_at}
            for e in service_queue.entries(store)
        ]
    finally:
        store.close()
