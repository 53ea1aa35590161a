"""A 2-worker data-parallel trial matches a 1-worker trial with twice the gradient accumulation."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.scheduling.runner import prepare_sweep, run_sweep
from orchestrator.spec import parse_spec

pytestmark = pytest.mark.slow

SPEC = {
    "name": "dp",
    "architectures": ["transformer"],
    "sizes": ["30k"],
    "budgets": {"tokens": [6144]},  # 24 steps of 256 tokens
    "data": {"seq_len": 32, "val_tokens": 4096},
    "training": {
        "batch_tokens": 256,
        "micro_batch_size": 4,
        "precision": "fp32",
        "eval_interval": 8,
        "lr": 3e-3,
    },
}


def _run(tmp_path: Path, workers: int) -> list[float]:
    spec = parse_spec(
        {
            **SPEC,
            "resources": {
                "workers_per_trial": workers,
                "cpus_per_worker": 1,
                "max_concurrent_trials": 1,
                "retries": 0,
            },
        }
    )
    workdir = tmp_path / f"w{workers}"
    console = Console(stderr=True, quiet=True)
    context = prepare_sweep(
        spec, workdir=workdir, db_url=f"sqlite:///{workdir / 'c.db'}", tracking_uri=None, console=console
    )
    summary = run_sweep(context, address=None, console=console)
    assert summary["outcomes"] == {"done": 1}
    (trial,) = context.store.trials("dp")
    return [row.value for row in context.store.evals([trial.id], "val_loss")]


def test_two_workers_match_one_worker_with_double_accumulation(ray_runtime, tmp_path: Path):
    one_worker_gas2 = _run(tmp_path, workers=1)  # 8 sequences/step = 2 micro-batches of 4 on one worker
    two_workers_gas1 = _run(tmp_path, workers=2)  # 4 sequences on each of two workers, gradients all-reduced
    assert len(one_worker_gas2) == len(two_workers_gas1) == 4  # steps 0, 8, 16, 24
    assert one_worker_gas2[-1] < one_worker_gas2[0] - 0.3  # both actually trained
    for a, b in zip(one_worker_gas2, two_workers_gas1, strict=True):
        assert b == pytest.approx(a, rel=1e-3)
