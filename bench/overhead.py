"""How much does ceiling cost over a bare PyTorch loop, and how fast does a trial start?

1. Throughput: one trial through the whole orchestrator (embedded Ray, warm worker, DeepSpeed engine,
   SQLite store, MLflow, evals, checkpoints) against the same model, data, optimizer, schedule and eval
   cadence in a plain PyTorch loop in this process, same thread count. Ratio = bare wall / ceiling
   wall for the same tokens (worker-side: from receiving the trial to its final record).
2. Start-up: a sweep of several short trials on one warm worker slot; the time from a trial being
   handed out to its first optimizer step (median).

    python bench/overhead.py              # ~60 s trial (the issue's target: ratio >= 0.90)
    python bench/overhead.py --seconds 15 # quicker
Prints a table, then one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console

import models
from orchestrator.data import prepare_data
from orchestrator.data.batches import TrainBatches, validation_windows
from orchestrator.scheduling.runner import prepare_sweep, run_sweep
from orchestrator.spec import parse_spec
from orchestrator.training.loop import _param_groups
from orchestrator.training.schedule import lr_multiplier
from orchestrator.trial import TrialConfig


def sweep_spec(
    name: str,
    size: str,
    tokens: list[int],
    seq_len: int,
    batch_tokens: int,
    precision: str,
    eval_interval: int,
) -> dict:
    return {
        "name": name,
        "architectures": ["transformer"],
        "sizes": [size],
        "budgets": {"tokens": tokens},
        "data": {"seq_len": seq_len, "val_tokens": 8192},
        "training": {
            "batch_tokens": batch_tokens,
            "precision": precision,
            "eval_interval": eval_interval,
            "micro_batch_size": batch_tokens // seq_len,
            "log_interval": 10,
        },
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1, "retries": 0},
    }


def bare_loop(trial_config: TrialConfig, data, threads: int) -> tuple[float, int]:
    """The same trial in plain PyTorch: returns (wall seconds, tokens)."""
    torch.set_num_threads(threads)
    started = time.time()
    torch.manual_seed(trial_config.seed)
    training = trial_config.training
    model = models.from_config(trial_config.model.arch, trial_config.model.shape.thaw())
    dtype = torch.bfloat16 if training.precision == "bf16" else None
    optimizer = torch.optim.AdamW(
        _param_groups(model, training.weight_decay, training.lr),
        lr=training.lr,
        betas=(training.beta1, training.beta2),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_multiplier(
            training.schedule,
            total_steps=trial_config.steps,
            warmup_steps=training.warmup_steps,
            cooldown_steps=training.cooldown_steps,
            min_lr_ratio=training.min_lr_ratio,
        ),
    )
    seq_len = trial_config.data.seq_len
    batches = TrainBatches(data.open("train"), seq_len, training.sequences_per_step, trial_config.seed)
    windows = validation_windows(data.open("val"), seq_len, trial_config.data.val_tokens)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = model(windows[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 1), windows[:, 1:].flatten()).item()
        model.train()
        return loss

    evaluate()
    for step in range(trial_config.steps):
        ((inputs, targets),) = batches.micro_batches(step, 0, 1, training.sequences_per_step)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        if (step + 1) % training.eval_interval == 0 or step + 1 == trial_config.steps:
            evaluate()
    return time.time() - started, trial_config.tokens


def run_ceiling(spec_dict: dict, workdir: Path) -> tuple[list, dict]:
    console = Console(stderr=True, quiet=True)
    spec = parse_spec(spec_dict)
    context = prepare_sweep(
        spec,
        workdir=workdir,
        db_url=f"sqlite:///{workdir / 'ceiling.db'}",
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        console=console,
    )
    summary = run_sweep(context, address=None, console=console)
    return context.store.trials(spec.name), summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="target length of the throughput trial")
    parser.add_argument("--size", default="200k")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--startup-trials", type=int, default=6)
    args = parser.parse_args()
    data = prepare_data()

    # Calibrate the step count to the requested length with a short bare run.
    probe = parse_spec(
        sweep_spec(
            "probe",
            args.size,
            [args.batch_tokens * 8],
            args.seq_len,
            args.batch_tokens,
            args.precision,
            10**6,
        )
    )
    from orchestrator.kinds import plan_trials

    (probe_trial,) = plan_trials(probe, data.vocab_size)
    probe_s, _ = bare_loop(probe_trial.config, data, threads=1)
    steps = max(20, int(args.seconds / (probe_s / 8)))
    tokens = steps * args.batch_tokens
    eval_interval = max(1, steps // 5)
    spec_dict = sweep_spec(
        "overhead", args.size, [tokens], args.seq_len, args.batch_tokens, args.precision, eval_interval
    )
    (trial,) = plan_trials(parse_spec(spec_dict), data.vocab_size)

    # Bare before and after ceiling, averaged: this machine's load drifts, and the drift should not
    # land on one side of the ratio.
    bare_before, _ = bare_loop(trial.config, data, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        (done,), summary = run_ceiling(spec_dict, Path(tmp))
        ceiling_s = done.final_metrics["train_wall_s"]
        sweep_wall_s = summary["wall_time_s"]
    bare_after, _ = bare_loop(trial.config, data, threads=1)
    bare_s = (bare_before + bare_after) / 2
    with tempfile.TemporaryDirectory() as tmp:
        budgets = [args.batch_tokens * (20 + i) for i in range(args.startup_trials)]
        startup_spec = sweep_spec(
            "startup", "50k", budgets, args.seq_len, args.batch_tokens, args.precision, 10**6
        )
        trials, _ = run_ceiling(startup_spec, Path(tmp))
        latencies = sorted(t.final_metrics["startup_latency_s"] for t in trials)

    ratio = bare_s / ceiling_s
    console = Console()
    console.print(
        f"trial: transformer {args.size}, {steps} steps x {args.batch_tokens} tokens, {args.precision}, 1 thread"
    )
    console.print(
        f"  bare PyTorch loop         {bare_s:8.1f} s  {tokens / bare_s:10.0f} tok/s"
        f"  (mean of {bare_before:.1f} s before and {bare_after:.1f} s after)"
    )
    console.print(f"  ceiling (worker-side)     {ceiling_s:8.1f} s  {tokens / ceiling_s:10.0f} tok/s")
    console.print(
        f"  ceiling (whole sweep)     {sweep_wall_s:8.1f} s  (incl. Ray start, worker start, MLflow)"
    )
    console.print(f"  throughput ratio vs bare  {ratio:8.3f}   (target >= 0.90)")
    console.print(
        f"start-up, {len(latencies)} trials on one warm slot: "
        + ", ".join(f"{x:.2f}" for x in latencies)
        + " s"
    )
    console.print(
        f"  median {statistics.median(latencies):.2f} s (target <= 5 s; the first includes worker start)"
    )
    result = {
        "throughput_ratio_vs_bare": round(ratio, 4),
        "median_start_latency_s": round(statistics.median(latencies), 3),
        "first_start_latency_s": round(latencies[-1], 3),
        "bare_tokens_per_s": round(tokens / bare_s, 1),
        "ceiling_tokens_per_s": round(tokens / ceiling_s, 1),
        "trial_seconds": round(ceiling_s, 1),
        "steps": steps,
        "size": args.size,
        "precision": args.precision,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
