"""A tiny efficiency study run for real (Ray, DeepSpeed, SQLite, MLflow): each trained model is measured
at the end of training, the measurements land in the store's table, the headline numbers in its final
metrics, evals and MLflow child run, and `ceiling runs` exports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Store
from orchestrator.store.efficiency import measurements

pytestmark = pytest.mark.slow

TINY = {
    "name": "eff-e2e",
    "architectures": ["transformer", "retnet"],
    "sizes": ["10k"],
    "budgets": {"tokens": ["16k"]},
    "data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 32, "val_tokens": 2048},
    "training": {
        "batch_tokens": 1024,
        "lr": 3e-3,
        "eval_interval": 8,
        "log_interval": 4,
        "precision": "fp32",
    },
    "efficiency": {
        "contexts": [64, 256],
        "batches": [1, 2],
        "max_batch_tokens": 128,  # batch 2 only at L = 64
        "decode_tokens": 4,
        "extrapolation": [1, 2, 4],
        "extrapolation_tokens": 256,
        "repeats": 1,
        "train_lengths": [32, 64],
    },
    "resources": {"max_concurrent_trials": 2, "retries": 0},
}


@pytest.fixture(scope="module")
def tiny_study(ray_runtime, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rich.console import Console

    from orchestrator.scheduling.runner import prepare_sweep, run_sweep
    from orchestrator.spec import load_spec

    workdir = tmp_path_factory.mktemp("eff-e2e")
    spec_file = workdir / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(TINY))
    console = Console(stderr=True, quiet=True)
    context = prepare_sweep(
        load_spec(spec_file),
        workdir=workdir,
        db_url=f"sqlite:///{workdir / 'ceiling.db'}",
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        console=console,
    )
    run_sweep(context, address=None, console=console)
    return workdir


def test_every_trained_model_is_measured_and_stored(tiny_study: Path):
    store = Store.open(f"sqlite:///{tiny_study / 'ceiling.db'}")
    try:
        trials = store.trials("eff-e2e")
        assert [t.status for t in trials] == ["done", "done"], [t.error for t in trials]
        rows = measurements(store, "eff-e2e")
        for trial in trials:
            mine = {
                (r["measure"], r["length"], r["batch"], r["metric"])
                for r in rows
                if r["trial_id"] == trial.id
            }
            assert {("decode", 64, 1, "tokens_per_s"), ("decode", 256, 1, "state_bytes"),
                    ("decode", 64, 2, "tokens_per_s"), ("prefill", 256, 1, "tokens_per_s"),
                    ("extrapolation", 128, 1, "loss")} <= mine  # fmt: skip
            assert ("decode", 256, 2, "tokens_per_s") not in mine  # 2 x 256 > max_batch_tokens
            assert {
                ("prefill", 32, 1, "train_tokens_per_s"),
                ("prefill", 64, 1, "train_tokens_per_s"),
            } <= mine
            final = trial.final_metrics
            assert final["decode_ms_per_token_L256"] > 0 and final["extrapolation_loss_x4"] > 0
            assert (
                "decode_flatness" in final and "copy_score" in final and final["train_tokens_per_s_T64"] > 0
            )
        transformer = next(t for t in trials if t.label == "transformer")
        cache = {
            (r["metric"], r["length"]): r["value"]
            for r in rows
            if r["trial_id"] == transformer.id and r["measure"] == "decode" and r["batch"] == 1
        }
        # the KV cache the decode holds is the analytic count (fp32: 4 bytes a number), and grows with L
        assert (
            cache[("state_bytes", 256)]
            == cache[("kv_cache_bytes_analytic", 256)]
            == 4 * cache[("state_bytes", 64)]
        )
        retnet = next(t for t in trials if t.label == "retnet")
        assert (
            retnet.final_metrics["state_bytes_L64"] == retnet.final_metrics["state_bytes_L256"]
        )  # a fixed state
        evals = {e.metric for e in store.evals([retnet.id])}
        assert {"decode_ms_per_token_L64", "state_bytes_L256", "extrapolation_ratio_x2"} <= evals
    finally:
        store.close()


def test_mlflow_child_run_has_the_measurements(tiny_study: Path):
    from mlflow.tracking import MlflowClient

    store = Store.open(f"sqlite:///{tiny_study / 'ceiling.db'}")
    run_id = store.trials("eff-e2e")[0].mlflow_run_id
    store.close()
    client = MlflowClient(f"sqlite:///{tiny_study / 'mlflow.db'}")
    assert "decode_ms_per_token_L256" in client.get_run(run_id).data.metrics
    assert "efficiency_measurements.json" in [a.path for a in client.list_artifacts(run_id)]


def test_ceiling_runs_exports_the_measurements(tiny_study: Path):
    db = ["--db", str(tiny_study / "ceiling.db")]
    result = CliRunner().invoke(app, ["runs", "eff-e2e", "--json", *db])
    assert result.exit_code == 0, result.output
    trials = json.loads(result.stdout)["trials"]
    assert all("decode_ms_per_token_L256" in t["final_metrics"] for t in trials)
    result = CliRunner().invoke(app, ["runs", "eff-e2e", "--efficiency", *db])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("trial_id,label,arch") and len(lines) > 20
