"""Recall studies end to end: a Transformer learns MQAR, and a small study runs through the real sweep
path (CLI, Ray, DeepSpeed, SQLite) and lands in the store with accuracy metrics for `ceiling recall`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from typer.testing import CliRunner

import models
from orchestrator.cli import app
from orchestrator.kinds import plan_trials
from orchestrator.recall.tasks import RecallTask
from orchestrator.spec import parse_spec
from orchestrator.store import Store

pytestmark = pytest.mark.slow


def test_a_transformer_learns_mqar():
    """Easy MQAR (32 tokens, 4 pairs, 64-token vocabulary) with a 2-layer, width-128 Transformer: past 0.9
    accuracy within 350 steps of 32 sequences (about 30 s on one core; the circuit forms near step 250)."""
    torch.set_num_threads(1)
    spec = parse_spec(
        {
            "name": "learns",
            "architectures": ["transformer"],
            "task": {
                "name": "mqar",
                "vocab_size": 64,
                "random_fillers": False,
                "train": [{"seq_len": 32, "kv_pairs": 4}],
                "widths": [128],
                "lrs": [1e-3],
                "steps": 350,
                "batch_size": 32,
                "test_examples": 256,
            },
        }
    )
    (trial,) = plan_trials(spec, 0)
    torch.manual_seed(0)
    model = models.from_config("transformer", trial.config.model.shape.thaw())
    task = RecallTask(trial.config)
    steps = trial.steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=trial.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 0.05 * steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup) * (1.0 if s < 0.8 * steps else max(0.1, (steps - s) / (0.2 * steps)))
        ),
    )
    before = task.evaluate(model, rank=0, world=1, batch_size=64, device=torch.device("cpu"))
    for step in range(steps):
        ((inputs, targets),) = task.micro_batches(step, 0, 1, 32)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
    after = task.evaluate(model, rank=0, world=1, batch_size=64, device=torch.device("cpu"))
    assert before["recall_accuracy/T32_kv4"] < 0.1
    assert after["recall_accuracy/T32_kv4"] >= 0.9, after


def test_a_small_recall_study_runs_through_the_sweep_path(ray_runtime, tmp_path: Path):
    study = {
        "name": "recall-e2e",
        "architectures": sorted({"transformer", *models.available()[:1]}),
        "seeds": [0, 1],
        "task": {
            "name": "mqar",
            "vocab_size": 64,
            "train": [{"seq_len": 32, "kv_pairs": 4}],
            "test": [{"seq_len": 32, "kv_pairs": 4}, {"seq_len": 64, "kv_pairs": 8}],
            "widths": [16],
            "lrs": [1e-3, 3e-3],
            "steps": 8,
            "batch_size": 8,
            "test_examples": 16,
        },
        "training": {"precision": "fp32", "eval_interval": 4, "log_interval": 4},
        "resources": {"max_concurrent_trials": 2, "retries": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    workdir = tmp_path / "w"
    result = CliRunner().invoke(app, ["run", str(path), "--workdir", str(workdir), "--json", "--no-mlflow"])
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout)
    archs = study["architectures"]
    assert summary["status"] == {"done": len(archs) * 2 * 2}
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    trials = store.trials("recall-e2e")
    for trial in trials:
        assert trial.corpus_fingerprint == "synthetic:mqar" and trial.final_val_loss is None
        assert trial.tokens_seen == trial.tokens == 8 * 8 * 32
        final = trial.final_metrics
        for name in ("T32_kv4", "T64_kv8"):
            assert 0.0 <= final[f"recall_accuracy/{name}"] <= 1.0
            assert final[f"recall_loss/{name}"] > 0
        rows = store.evals([trial.id], "recall_accuracy/T64_kv8")
        assert [r.step for r in rows] == [0, 4, 8]
    report = CliRunner().invoke(app, ["recall", "recall-e2e", "--workdir", str(workdir), "--json"])
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    assert document["hardest"] == "T64_kv8" and document["settings"] == ["T32_kv4", "T64_kv8"]
    assert {(r["arch"], r["width"]) for r in document["rows"]} == {(a, 16) for a in archs}
    for row in document["rows"]:
        assert row["best_lr"] in (1e-3, 3e-3) and set(row["lrs"]) == {"0.001", "0.003"}
        assert row["accuracy"]["T64_kv8"]["n"] == 2  # spread over the two seeds
        assert row["state_size"]["T64_kv8"] > 0
    assert len(document["reached"]) == len(archs) * 2
    table = CliRunner().invoke(app, ["recall", "recall-e2e", "--workdir", str(workdir)])
    assert table.exit_code == 0 and "not reached" in table.output
