"""WSD cooldown branches through a real sweep (CLI, Ray, DeepSpeed, SQLite): a branch from a trunk's
checkpoint computes what an independent WSD run of the same budget computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Store
from orchestrator.store.law_inputs import law_runs

pytestmark = pytest.mark.slow

# 16- and 32-step budgets of 2048 tokens; cooldown 25% (4 and 8 steps) -> branches start at 12 and 24.
BASE = {
    "architectures": ["transformer"],
    "sizes": ["20k"],
    "data": {"seq_len": 64, "val_tokens": 8192},
    "training": {
        "batch_tokens": 2048, "lr": 3e-3, "schedule": "wsd", "cooldown_frac": 0.25,
        "eval_interval": 100, "log_interval": 8, "checkpoint_interval": 8,
    },
    "resources": {"max_concurrent_trials": 2, "retries": 0},
}


def _sweep(tmp_path: Path, workdir: Path, name: str, tokens: list[int], **training) -> dict:
    spec = {**BASE, "name": name, "budgets": {"tokens": tokens}}
    spec["training"] = {**BASE["training"], **training}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["run", str(path), "--workdir", str(workdir), "--json", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_branch_matches_an_independent_run_of_the_same_budget(ray_runtime, tmp_path: Path):
    workdir = tmp_path / "work"
    # Branched: warmup is 12.5% of the smallest budget (2 steps) for the trunk and both branches.
    branched = _sweep(tmp_path, workdir, "branched", [32768, 65536], branches=True, warmup_frac=0.125)
    assert branched["status"] == {"done": 3}
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    trials = {t.role: [] for t in store.trials("branched")}
    for t in store.trials("branched"):
        trials[t.role].append(t)
    (trunk,) = trials["trunk"]
    assert trunk.steps_done == 24 and trunk.parent_id is None
    branches = sorted(trials["branch"], key=lambda t: t.steps_total)
    assert [b.steps_total for b in branches] == [16, 32]
    for branch in branches:
        assert branch.parent_id == trunk.id and branch.tokens_seen == branch.tokens
        # It resumed from the trunk's checkpoint at its start step, and counts the whole budget.
        assert branch.final_metrics["resumed_from_step"] == branch.config["branch"]["start_step"]

    # Independent 32-step WSD run with the same schedule shape: 2 warmup steps (6.25% of 32), 8 cooldown.
    independent = _sweep(tmp_path, workdir, "independent", [65536], warmup_frac=0.0625)
    assert independent["status"] == {"done": 1}
    (alone,) = store.trials("independent")
    assert alone.config["training"]["warmup_steps"] == 2 and alone.config["training"]["cooldown_steps"] == 8
    long_branch = branches[1]
    assert long_branch.final_val_loss == pytest.approx(alone.final_val_loss, rel=1e-3)
    # Its own tokens and FLOPs count the trunk prefix it used: the same as the independent run's.
    assert (long_branch.tokens, long_branch.flops_exact) == (alone.tokens, alone.flops_exact)
    print(f"branch {long_branch.final_val_loss:.6f} vs independent {alone.final_val_loss:.6f}")

    # Law inputs: branches are points, the trunk is listed as excluded with its reason.
    runs = law_runs(store, "branched")
    assert sorted(runs.columns["run_id"]) == sorted(b.id for b in branches)
    assert [e["trial"] for e in runs.excluded] == [trunk.id]
    assert "trunk" in runs.excluded[0]["reason"]
