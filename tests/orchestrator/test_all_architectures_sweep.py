"""Every registered architecture runs in a real sweep (Ray, DeepSpeed, SQLite) and lands in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import models
from orchestrator.cli import app
from orchestrator.store import Store

pytestmark = pytest.mark.slow


def test_every_architecture_completes_a_sweep(ray_runtime, tmp_path: Path):
    names = models.available()
    spec = {
        "name": "every-arch",
        "architectures": names,
        "sizes": ["30k"],
        "budgets": {"tokens": ["16k"]},
        "data": {"seq_len": 64, "val_tokens": 4096},
        "training": {"batch_tokens": 1024, "eval_interval": 8, "precision": "bf16"},
        "resources": {"max_concurrent_trials": 2, "retries": 0},
    }
    path = tmp_path / "every.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(
        app, ["run", str(path), "--workdir", str(tmp_path / "w"), "--json", "--no-mlflow"]
    )
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout)
    assert summary["status"] == {"done": len(names)}
    store = Store.open(f"sqlite:///{tmp_path / 'w' / 'ceiling.db'}")
    trials = {t.arch: t for t in store.trials("every-arch")}
    assert sorted(trials) == names
    for name, trial in trials.items():
        assert trial.final_val_loss is not None and trial.final_val_loss < 5.0, name
        assert abs(trial.params_non_embedding / 30e3 - 1) < 0.10, name
        assert trial.state_size > 0 and trial.flops_exact > 0, name
