"""A sweep process started ahead: imports done and Ray joined, waiting for a sweep name on stdin.

Started by the queue runner (orchestrator/api/queue_runner.py) as
``python -m orchestrator.api.warm_driver --log-dir DIR <ceiling resume options>``. It imports what
``ceiling resume`` needs (the runner, the dispatcher, Ray, torch and the models for planning, MLflow
when used), plans one tiny model, opens the MLflow store and connects to the service's Ray cluster
(together ~10-20 s of a sweep's start on a busy 2-core machine), then blocks on one line of stdin: a sweep name. Given one, it moves its output
to ``DIR/NAME.log`` and runs ``ceiling resume NAME <options>`` in this process: same code, same exit
codes, same SIGINT handling as a sweep process started cold. End of input (the server stopped, or
died: the pipe closes) and it exits 0 without touching the store.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

# What `ceiling resume` imports on its way to the first trial (its CLI imports lazily, per command).
PRELOAD = (
    "orchestrator.cli",
    "orchestrator.cli.sweeps",
    "orchestrator.spec",
    "orchestrator.scheduling.runner",
    "orchestrator.scheduling.dispatcher",
    "orchestrator.scheduling.groups",
    "orchestrator.scheduling.worker",
    "orchestrator.tracking",
    "orchestrator.data",
    "orchestrator.store",
    "ray",
    "torch",
    "models",
)


def _option(options: list[str], name: str) -> str | None:
    return options[options.index(name) + 1] if name in options[:-1] else None


def warm_up(options: list[str]) -> None:
    """Import the sweep process's modules and join the service's Ray cluster (``--address``)."""
    started = time.monotonic()
    for module in PRELOAD:
        importlib.import_module(module)
    if "--no-mlflow" not in options:
        importlib.import_module("mlflow")
    from orchestrator.scheduling.runner import connect_ray

    address = _option(options, "--address")
    if address:  # without one (no cluster given), `resume` starts its own Ray as a cold process does
        connect_ray(address)
    for step in (warm_planning, lambda: _warm_tracking(options)):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - an optimisation only: the sweep does it again anyway
            print(f"warm driver {os.getpid()}: warm-up step failed ({type(exc).__name__}: {exc})", flush=True)
    print(f"warm driver {os.getpid()}: ready in {time.monotonic() - started:.1f} s", flush=True)


def warm_planning() -> None:
    """Plan one tiny model as a sweep's planning does (models.describe on the meta device): the first
    call pulls in torch and the lazily imported parts it needs (seconds), later calls are instant."""
    import models

    models.describe("transformer", size="20k", vocab_size=256, seq_len=64)


def _warm_tracking(options: list[str]) -> None:
    """Open the MLflow tracking store once: its client imports and checks the schema (seconds)."""
    uri = _option(options, "--tracking-uri")
    if uri and "--no-mlflow" not in options:
        from mlflow.tracking import MlflowClient

        MlflowClient(uri)


def _output_to(path: Path) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["--log-dir"] or len(args) < 2:
        sys.exit("usage: python -m orchestrator.api.warm_driver --log-dir DIR [ceiling resume options]")
    log_dir, options = Path(args[1]), args[2:]
    try:
        warm_up(options)
    except Exception as exc:  # noqa: BLE001 - a sweep may already be waiting on us: run it cold, not fail it
        print(f"warm driver {os.getpid()}: warm-up failed ({type(exc).__name__}: {exc})", flush=True)
    name = sys.stdin.readline().strip()
    if not name:
        return  # the server is gone or stopping: nothing was started
    _output_to(log_dir / f"{name}.log")
    sys.argv = ["ceiling", "resume", name, *options]
    from orchestrator.cli import main as ceiling

    ceiling()


if __name__ == "__main__":
    main()
