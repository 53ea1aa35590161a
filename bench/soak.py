"""Soak: hundreds of tiny trials through the real orchestrator while workers are SIGKILLed at random.

The sweep (Transformer, ~10-20k parameters, 4 or 8 steps, 5 sizes x 2 budgets x seeds) runs through
`prepare_sweep` / `run_sweep`: embedded Ray, warm worker groups, DeepSpeed, SQLite, checkpoints. A
background thread picks a running trial from the store at random intervals, reads its `worker` column
(host:pid of rank 0) and SIGKILLs that process (only if it is a descendant of this one). Retries are set
high, so every trial must still end `done`, exactly once: one row per planned trial, every attempt
accounted for as a retry, one eval row per (step, metric), final metrics recorded.

    python bench/soak.py            # 200 trials (several minutes on 2 cores)
    python bench/soak.py --quick    # 30 trials
    python bench/soak.py --trials 500 --kill-every 5 --concurrency 4

Prints a table, then as its last line one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator.scheduling.runner import prepare_sweep, run_sweep
from orchestrator.spec import parse_spec
from orchestrator.store import Store

SIZES = ["10k", "12k", "14k", "17k", "20k"]
SEQ_LEN, BATCH_TOKENS, EVAL_INTERVAL = 64, 512, 4
BUDGET_STEPS = (4, 8)


def soak_spec(name: str, trials: int, concurrency: int) -> dict:
    seeds = math.ceil(trials / (len(SIZES) * len(BUDGET_STEPS)))
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": SIZES,
        "budgets": {"tokens": [steps * BATCH_TOKENS for steps in BUDGET_STEPS]},
        "seeds": seeds,
        "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": SEQ_LEN, "val_tokens": 1024},
        "training": {
            "batch_tokens": BATCH_TOKENS,
            "precision": "fp32",  # faster than bf16 for these sizes on CPU
            "eval_interval": EVAL_INTERVAL,
            "log_interval": 2,
            "warmup_frac": 0.25,
        },
        "resources": {
            "workers_per_trial": 1,
            "cpus_per_worker": 1,
            "max_concurrent_trials": concurrency,
            "retries": 100,
        },
    }


class Killer(threading.Thread):
    """SIGKILLs the rank-0 worker of a random running trial every ~``mean_s`` seconds (exponential)."""

    def __init__(self, store_url: str, sweep: str, mean_s: float, seed: int):
        super().__init__(daemon=True)
        self.store = Store.open(store_url)
        self.sweep, self.mean_s = sweep, mean_s
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills: list[dict] = []
        self.skipped = 0

    def run(self) -> None:
        import psutil

        me = os.getpid()
        host = socket.gethostname()
        while not self.stop.wait(self.rng.expovariate(1.0 / self.mean_s)):
            running = [t for t in self.store.trials(self.sweep, statuses=["running"]) if t.worker]
            if not running:
                continue
            trial = self.rng.choice(running)
            worker_host, _, pid_text = trial.worker.rpartition(":")
            try:
                pid = int(pid_text)
                process = psutil.Process(pid)
                ours = worker_host == host and any(p.pid == me for p in process.parents())
            except (ValueError, psutil.Error):
                ours = False  # a stale worker column: that process is already gone
            if not ours:
                self.skipped += 1
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                self.skipped += 1
                continue
            self.kills.append(
                {"trial": trial.id, "pid": pid, "steps_done": trial.steps_done, "at": time.time()}
            )


def verify(store: Store, sweep: str, planned: int) -> dict:
    """Every trial done exactly once: rows, statuses, attempts, evals, final records."""
    trials = store.trials(sweep)
    ids = [t.id for t in trials]
    evals = store.evals(ids, "val_loss")
    eval_steps: dict[str, list[int]] = {}
    for row in evals:
        eval_steps.setdefault(row.trial_id, []).append(row.step)
    problems = []
    if len(ids) != planned or len(set(ids)) != planned:
        problems.append(f"{len(ids)} rows ({len(set(ids))} distinct) for {planned} planned trials")
    for t in trials:
        expected = sorted(set(range(0, t.steps_total + 1, EVAL_INTERVAL)) | {t.steps_total})
        if t.status != "done":
            problems.append(f"{t.id[:8]}: status {t.status}")
        elif t.final_val_loss is None or not math.isfinite(t.final_val_loss):
            problems.append(f"{t.id[:8]}: no final val loss")
        elif sorted(eval_steps.get(t.id, [])) != expected:
            problems.append(
                f"{t.id[:8]}: val_loss at steps {sorted(eval_steps.get(t.id, []))}, want {expected}"
            )
        elif t.steps_done != t.steps_total:
            problems.append(f"{t.id[:8]}: {t.steps_done}/{t.steps_total} steps")
    return {
        "rows": len(ids),
        "done": sum(t.status == "done" for t in trials),
        "extra_attempts": sum(t.attempts - 1 for t in trials),
        "trials_retried": sum(t.attempts > 1 for t in trials),
        "max_attempts": max((t.attempts for t in trials), default=0),
        "resumed_from_checkpoint": sum(
            bool((t.final_metrics or {}).get("resumed_from_step")) for t in trials if t.status == "done"
        ),
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, default=200, help="trials to run (rounded up to a multiple of 10)"
    )
    parser.add_argument("--quick", action="store_true", help="30 trials")
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds between kills (0: none)")
    parser.add_argument("--concurrency", type=int, default=2, help="resources.max_concurrent_trials")
    parser.add_argument("--seed", type=int, default=0, help="seeds the killer's choices and intervals")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--address", default=None, help="Ray address (default: a fresh embedded cluster)")
    args = parser.parse_args()
    wanted = 30 if args.quick else args.trials

    console = Console(stderr=True)
    quiet = Console(stderr=True, quiet=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ceiling-soak-"))
    url = f"sqlite:///{workdir / 'soak.db'}"
    spec = parse_spec(soak_spec(f"soak-{wanted}", wanted, args.concurrency))
    context = prepare_sweep(spec, workdir=workdir, db_url=url, tracking_uri=None, console=quiet)
    planned = len(context.trials)
    console.print(
        f"soak: {planned} trials, killing a worker every ~{args.kill_every:g} s; work folder {workdir}"
    )

    killer = Killer(url, spec.name, args.kill_every, args.seed) if args.kill_every > 0 else None
    started = time.time()
    if killer:
        killer.start()
    try:
        # "local": always a fresh embedded Ray, even if a stale `ray start` left /tmp/ray/ray_current_cluster
        summary = run_sweep(context, address=args.address or "local", console=quiet)
    finally:
        if killer:
            killer.stop.set()
            killer.join(timeout=10)
    wall = time.time() - started
    check = verify(context.store, spec.name, planned)
    kills = len(killer.kills) if killer else 0
    exactly_once = (
        not check["problems"]
        and summary.get("outcomes") == {"done": planned}
        and summary.get("ran") == planned
        and check["extra_attempts"] == summary.get("retries")
    )

    table = Table(title=f"soak: {planned} tiny trials, random SIGKILLs", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("trials planned / rows in store", f"{planned} / {check['rows']}"),
        ("trials done", str(check["done"])),
        ("wall time", f"{wall:.0f} s"),
        ("trials per minute", f"{planned / wall * 60:.1f}"),
        ("workers killed (SIGKILL)", str(kills)),
        ("kill attempts skipped (worker already gone)", str(killer.skipped if killer else 0)),
        (
            "retries (dispatcher) / extra attempts (store)",
            f"{summary.get('retries')} / {check['extra_attempts']}",
        ),
        ("trials retried / max attempts", f"{check['trials_retried']} / {check['max_attempts']}"),
        ("retried trials resumed from a checkpoint", str(check["resumed_from_checkpoint"])),
        ("every trial done exactly once", "yes" if exactly_once else "NO"),
    ):
        table.add_row(label, value)
    Console().print(table)
    for problem in check["problems"][:20]:
        console.print(f"problem: {problem}", style="red")
    print(
        json.dumps(
            {
                "trials_per_minute": round(planned / wall * 60, 2),
                "done_exactly_once": exactly_once,
                "trials": planned,
                "done": check["done"],
                "kills": kills,
                "retries": summary.get("retries"),
                "extra_attempts": check["extra_attempts"],
                "trials_retried": check["trials_retried"],
                "resumed_from_checkpoint": check["resumed_from_checkpoint"],
                "max_attempts": check["max_attempts"],
                "wall_s": round(wall, 1),
                "problems": len(check["problems"]),
            }
        )
    )
    sys.exit(0 if exactly_once else 1)


if __name__ == "__main__":
    main()
