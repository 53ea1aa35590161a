"""The smoke sweep end to end through the real CLI, Ray, DeepSpeed, SQLite and MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Store
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(ray_runtime, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """The smoke sweep's work folder, its JSON summary, and everything it printed (stdout and stderr)."""
    workdir = tmp_path_factory.mktemp("smoke")
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLES / "smoke.yaml"), "--workdir", str(workdir), "--json"]
    )
    assert result.exit_code == 0, result.output
    return workdir, json.loads(result.stdout), result.output


def test_every_trial_is_done_with_accounting_and_metrics(smoke_run):
    workdir, summary, _ = smoke_run
    assert summary["planned"] == 4 and summary["ran"] == 4 and summary["status"] == {"done": 4}
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    trials = store.trials("smoke")
    assert len(trials) == 4
    assert {(t.size_target, t.tokens) for t in trials} == {
        (s, d) for s in (20e3, 50e3) for d in (63488, 126976)
    }
    for trial in trials:
        assert trial.status == "done" and trial.attempts == 1 and trial.error is None
        assert trial.params_total == trial.params_embedding + trial.params_non_embedding
        assert abs(trial.params_non_embedding / trial.size_target - 1) < 0.10
        assert trial.flops_exact > trial.flops_6nd > 0  # exact adds attention and the unembedding
        assert trial.tokens_seen == trial.tokens and trial.steps_done == trial.steps_total
        assert trial.corpus_fingerprint and trial.code_version and trial.library_versions["torch"]
        # Byte-level loss starts near ln(257) = 5.55 nats and must fall well below it.
        assert 1.0 < trial.final_val_loss < 4.5
        assert math.isclose(trial.final_val_bpb, trial.final_val_loss / math.log(2), rel_tol=1e-6)


def test_eval_rows_cover_every_interval(smoke_run):
    workdir, _, _ = smoke_run
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    for trial in store.trials("smoke"):
        rows = store.evals([trial.id], "val_loss")
        steps = [r.step for r in rows]
        expected = sorted({0, *range(16, trial.steps_total + 1, 16), trial.steps_total})
        assert steps == expected
        assert rows[0].value > rows[-1].value + 0.5  # it learned
        assert rows[-1].value == pytest.approx(trial.final_val_loss)
        assert rows[-1].tokens_seen == trial.tokens


def test_mlflow_has_a_parent_run_and_one_child_per_trial(smoke_run):
    from mlflow.tracking import MlflowClient

    workdir, summary, _ = smoke_run
    client = MlflowClient(summary["mlflow"])
    experiment = client.get_experiment_by_name("ceiling/smoke")
    runs = client.search_runs([experiment.experiment_id])
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    sweep = store.get_sweep("smoke")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep.mlflow_run_id]
    assert len(runs) == 5 and len(children) == 4
    for trial in store.trials("smoke"):
        child = client.get_run(trial.mlflow_run_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["ceiling.trial_id"] == trial.id
        assert child.data.params["arch"] == "transformer"
        history = client.get_metric_history(trial.mlflow_run_id, "val_loss")
        assert len(history) == len(store.evals([trial.id], "val_loss"))
        assert client.get_metric_history(trial.mlflow_run_id, "train_loss")


def test_submitting_again_runs_nothing(smoke_run):
    workdir, _, _ = smoke_run
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLES / "smoke.yaml"), "--workdir", str(workdir), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["to_run"] == 0 and summary["ran"] == 0 and summary["new"] == 0
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    assert all(t.attempts == 1 for t in store.trials("smoke"))


def test_runs_and_status_commands_read_the_store(smoke_run):
    workdir, _, _ = smoke_run
    runner = CliRunner()
    csv_result = runner.invoke(app, ["runs", "smoke", "--workdir", str(workdir), "--csv"])
    assert csv_result.exit_code == 0
    lines = csv_result.stdout.strip().splitlines()
    assert lines[0].startswith("id,arch,label,status") and len(lines) == 5
    status = runner.invoke(app, ["status", "smoke", "--workdir", str(workdir), "--json"])
    (entry,) = json.loads(status.stdout)["sweeps"]
    assert entry["name"] == "smoke" and entry["status"] == {"done": 4}
    assert [row["status"] for row in entry["trials"]] == ["done"] * 4  # the progress table's rows
    missing = runner.invoke(app, ["status", "nope", "--workdir", str(workdir)])
    assert missing.exit_code == 2 and "smoke" in missing.output


def test_library_log_lines_go_to_the_work_folder_not_the_terminal(smoke_run):
    workdir, _, output = smoke_run
    log = (workdir / "ceiling.log").read_text()
    for chatter in ("Creating initial MLflow database tables", "alembic"):
        assert chatter not in output
        assert chatter in log
