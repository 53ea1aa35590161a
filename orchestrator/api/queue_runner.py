"""The queue runner: a thread of the server that starts queued sweeps fairly and watches them.

Each running sweep is a child process, ``ceiling resume NAME`` with the service's store, Ray cluster
(``--address``, else one embedded cluster the server starts with its first sweep) and MLflow
settings: the same runner as the CLI (orchestrator/scheduling/runner.py), which reads the spec from
the store, runs only the trials not done yet, and releases its trials on SIGINT. So:

- a cancelled sweep is ``cancelled`` in the store at once; if it was running, its process gets
  SIGINT (then SIGKILL after a grace period) and its running trials go back to pending, with their
  checkpoints;
- the children die with the server (PR_SET_PDEATHSIG), so a server killed with SIGKILL leaves no
  orphan training; on start-up every sweep still marked ``running`` is started again, and trial ids
  plus the store's statuses make sure that no finished trial runs twice;
- a child's exit code says how it ended: 0 done, 1 some trials failed, anything else failed.

Starting a sweep's process costs seconds before its first trial (Python, the runner's imports, joining
Ray): so one *warm driver* (orchestrator/api/warm_driver.py) is kept started ahead, its imports done and
Ray joined, waiting for a sweep name on its stdin. A sweep that starts is handed to it (it then runs
exactly ``ceiling resume NAME``, in the same process group, log and exit codes) and a new spare is
started once the sweeps just started are past their own start-up. The spare is started from the same
thread, with the same PR_SET_PDEATHSIG, so it dies with the server too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.api.settings import ServiceSettings
from orchestrator.store import service_queue

log = logging.getLogger("ceiling.api.queue")
CANCEL_GRACE_S = 20.0  # SIGINT lets the runner release its trials; then SIGKILL
LOG_FOLDER = "service-logs"
# A new spare waits until the sweeps started this long ago are past their start-up: on a small machine
# its imports would otherwise take CPU from the sweep that was just handed the previous spare.
SPARE_AFTER_START_S = 10.0
SPARE_RETRY_S = 30.0  # a spare that died waiting (a broken install?) is not restarted in a tight loop
SPARE_LOG = "warm-driver.log"


@dataclass
class SweepProcess:
    name: str
    process: subprocess.Popen
    log_path: Path
    cancelling_since: float | None = None
    stopping: bool = False  # the server is shutting down: leave the queue row `running` to resume
    started: float = field(default_factory=time.monotonic)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL this child when the server's scheduler thread dies (SIGKILL included)."""
    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass
    os.setsid()  # its own process group: a cancel stops the runner and what it started, nothing else


class QueueRunner:
    def __init__(self, store: Any, settings: ServiceSettings):
        self.store, self.settings = store, settings
        self.running: dict[str, SweepProcess] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.log_dir = settings.workdir / LOG_FOLDER
        self._embedded_address: str | None = None
        self.spare: subprocess.Popen | None = None  # the warm driver waiting for a sweep, if any
        self._spare_failed_at = -float("inf")
        self.spares_used = 0

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ceiling-queue-runner", daemon=True)
        self._thread.start()
        # A submit plans its trials (models.describe: torch and the models, seconds on first use); do
        # that once now, beside the serving, rather than in the first submit's request.
        threading.Thread(target=_warm_planning, name="ceiling-warm-planning", daemon=True).start()

    def wake(self) -> None:
        """Look at the queue now (after a submit or a cancel) instead of at the next tick."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the children politely (their trials are released and resume on the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- the loop ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        # Children are started from this thread only: PR_SET_PDEATHSIG fires when the thread that
        # forked a child ends, and this thread lives as long as the server.
        failing = False
        while not self._stop.is_set():
            try:
                self.tick()
                if failing:
                    log.warning("queue runner: the store answers again")
                failing = False
            except Exception as exc:  # the store away, most likely: try again on the next tick
                if not failing:  # one line per outage, not one a second
                    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    from orchestrator.store.engine import _redact_text

                    log.warning(
                        "queue runner: %s: %s; retrying every %.0f s",
                        type(exc).__name__,
                        _redact_text(first_line),
                        self.settings.scheduler_interval_s,
                    )
                failing = True
            self._wake.wait(self.settings.scheduler_interval_s)
            self._wake.clear()
        self._shutdown_children()

    def tick(self) -> None:
        """One pass: reap finished children, act on cancels, resume or start sweeps up to the limit."""
        self._reap()
        every = service_queue.entries(self.store)
        for entry in every:
            child = self.running.get(entry.name)
            if entry.status == "running" and child is None:
                self._spawn(entry.name)  # running in the store but not here: the server restarted
            elif child is not None and entry.status == "cancelled" and child.cancelling_since is None:
                self._interrupt(child)
        for child in self.running.values():
            if (
                child.cancelling_since is not None
                and time.monotonic() - child.cancelling_since > CANCEL_GRACE_S
            ):
                _kill_group(child.process)
        while len(self.running) < self.settings.max_running_sweeps:
            chosen = service_queue.pick_next(service_queue.entries(self.store))
            if chosen is None or chosen.name in self.running:
                break  # nothing queued, or a resubmitted sweep whose cancelled process is still stopping
            if service_queue.claim(self.store, chosen.name):
                log.info("starting sweep %s of %s", chosen.name, chosen.owner)
                self._spawn(chosen.name)
        self._keep_spare()

    def _reap(self) -> None:
        for name, child in list(self.running.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.running[name]
            if child.stopping:
                continue
            entry = service_queue.get(self.store, name)
            if entry is None or entry.status != "running":
                continue  # cancelled (recorded when asked) or resubmitted meanwhile
            if code == 0:
                status, error = "done", None
            elif code == 1:
                status, error = "failed", f"some trials did not finish; see `ceiling status {name}`"
            else:
                status, error = "failed", f"the sweep process exited with code {code}; see {child.log_path}"
            service_queue.finish(self.store, name, status, error)
            log.info("sweep %s %s", name, status)

    # --- children ---------------------------------------------------------------------------------
    def command(self, name: str) -> list[str]:
        """A sweep's process started cold: ``ceiling resume NAME`` with the service's settings."""
        return [
            sys.executable,
            "-c",
            "from orchestrator.cli import main; main()",
            "resume",
            name,
            *self.options(),
        ]

    def spare_command(self) -> list[str]:
        """The warm driver: the same options, the sweep's name comes later on its stdin."""
        return [
            sys.executable,
            "-m",
            "orchestrator.api.warm_driver",
            "--log-dir",
            str(self.log_dir),
            *self.options(),
        ]

    def options(self) -> list[str]:
        s = self.settings
        command = ["--db", s.db_url, "--workdir", str(s.workdir)]
        address = self.cluster_address()
        if address:
            command += ["--address", address]
        if s.no_mlflow:
            command += ["--no-mlflow"]
        elif s.tracking_uri:
            command += ["--tracking-uri", s.tracking_uri]
        return command

    def cluster_address(self) -> str | None:
        """The Ray cluster the sweeps join: ``--address``, else one embedded cluster that this server
        starts with its first sweep (or first warm driver) and keeps (each sweep would otherwise spend seconds starting its
        own). Ray's processes die with the server, as its sweeps do."""
        if self.settings.address:
            return self.settings.address
        if self._embedded_address is None:
            import ray

            from orchestrator.scheduling.runner import connect_ray

            log.info("starting an embedded Ray cluster for the sweeps")
            connect_ray(None)
            self._embedded_address = ray.get_runtime_context().gcs_address
        return self._embedded_address

    def _keep_spare(self) -> None:
        """Have one warm driver waiting while sweeps may run; reap one that died waiting."""
        if self.spare is not None and self.spare.poll() is not None:
            log.warning(
                "the warm driver exited with %s while waiting; see %s",
                self.spare.returncode,
                self.log_dir / SPARE_LOG,
            )
            self.spare = None
            self._spare_failed_at = time.monotonic()
        if self.spare is not None or not self.settings.warm_driver or self.settings.max_running_sweeps < 1:
            return
        now = time.monotonic()
        if now - self._spare_failed_at < SPARE_RETRY_S:
            return  # the last spare died waiting: not again at once
        if any(now - child.started < SPARE_AFTER_START_S for child in self.running.values()):
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / SPARE_LOG, "ab") as out:
            self.spare = subprocess.Popen(
                self.spare_command(),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                env=os.environ | {"COLUMNS": "160"},
            )
        log.info("warm driver started (pid %d), waiting for the next sweep", self.spare.pid)

    def _take_spare(self, name: str) -> subprocess.Popen | None:
        """Hand ``name`` to the waiting warm driver; None if there is none (or it has just died)."""
        spare, self.spare = self.spare, None
        if spare is None or spare.poll() is not None:
            return None
        try:
            assert spare.stdin is not None
            spare.stdin.write(f"{name}\n".encode())
            spare.stdin.close()
        except OSError:  # it died in between: start the sweep cold
            _kill_group(spare)
            return None
        self.spares_used += 1
        log.info("sweep %s runs in the warm driver (pid %d)", name, spare.pid)
        return spare

    def _spawn(self, name: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        spare = self._take_spare(name)
        if spare is not None:  # it appends to log_path itself from now on
            self.running[name] = SweepProcess(name, spare, log_path)
            return
        # The command holds the store URL (maybe with a password): it goes to the child, never a log.
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                self.command(name),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                env=os.environ | {"COLUMNS": "160"},
            )
        self.running[name] = SweepProcess(name, process, log_path)

    def _interrupt(self, child: SweepProcess) -> None:
        child.cancelling_since = time.monotonic()
        try:
            os.killpg(child.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def _shutdown_children(self) -> None:
        for child in self.running.values():
            child.stopping = True
            try:
                os.killpg(child.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + CANCEL_GRACE_S
        for child in self.running.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(child.process)
        self.running.clear()
        if self.spare is not None:  # idle: nothing to release
            _kill_group(self.spare)
            self.spare.wait(5)
            self.spare = None
        if self._embedded_address is not None:
            import ray

            ray.shutdown()


def _warm_planning() -> None:
    from orchestrator.api.warm_driver import warm_planning

    try:
        warm_planning()
    except Exception:  # an optimisation only: the first submit plans as it always did
        log.debug("warming up planning failed", exc_info=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
