"""Passwords never leak; names never escape the work folder.

A real (tiny) sweep runs against a Postgres store whose URL carries a password; the password must not
appear in any command's output, in MLflow params or tags, in the store's rows, or in the Ray logs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.spec import SpecError, parse_spec
from orchestrator.store import redact
from orchestrator.tracking import SweepTracking, _flatten

SECRET = "Pw-d0-not-LEAK-7f3a"
TINY = {
    "name": "secrets",
    "architectures": ["transformer"],
    "sizes": ["10k"],
    "budgets": {"tokens": [2048]},  # 4 steps of 512 tokens
    "data": {"seq_len": 64, "val_tokens": 2048},
    "training": {"batch_tokens": 512, "precision": "fp32", "eval_interval": 4, "log_interval": 2},
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1, "retries": 0},
}


def _with_password(url: str) -> str:
    assert url.startswith("postgresql+psycopg://postgres@")
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)  # trust auth: the server ignores it


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result, result.output  # stdout + stderr


def test_redact_and_flatten_hide_passwords():
    url = f"postgresql+psycopg://me:{SECRET}@db.internal:5432/ceiling"
    assert SECRET not in redact(url) and "me:***@db.internal" in redact(url)
    assert redact("not a url at all ://") == "<unparseable database URL>"
    params: dict[str, str] = {}
    _flatten(
        "", {"store": redact(url), "nested": {"tracking": redact(f"http://u:{SECRET}@mlflow:5000")}}, params
    )
    assert not any(SECRET in v for v in params.values())


@pytest.fixture(scope="module")
def leaky_run(ray_runtime, postgres_url, tmp_path_factory: pytest.TempPathFactory):
    """One 4-step trial through `ceiling run` with the password in --db; then status/runs/plan."""
    folder = tmp_path_factory.mktemp("secrets")
    spec_file = folder / "secrets.yaml"
    spec_file.write_text(yaml.safe_dump(TINY))
    db = _with_password(postgres_url)
    work = folder / "work"
    outputs = {}
    result, outputs["run"] = _invoke("run", str(spec_file), "--workdir", str(work), "--db", db, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for name, args in {
        "run-again": ["run", str(spec_file), "--workdir", str(work), "--db", db],
        "status": ["status", "--db", db],
        "status-sweep": ["status", "secrets", "--db", db, "--json"],
        "runs": ["runs", "secrets", "--db", db, "--json", "--evals"],
        "runs-csv": ["runs", "secrets", "--db", db, "--csv"],
        "missing-sweep": ["status", "nope", "--db", db],
    }.items():
        result, outputs[name] = _invoke(*args)
        assert result.exit_code in (0, 2), (name, result.output)
    return {"summary": summary, "outputs": outputs, "work": work, "db": db}


@pytest.mark.slow
def test_password_in_the_store_url_never_reaches_output(leaky_run):
    for name, output in leaky_run["outputs"].items():
        assert SECRET not in output, name
    assert leaky_run["summary"]["store"] == redact(leaky_run["db"])
    assert leaky_run["summary"]["status"] == {"done": 1}


@pytest.mark.slow
def test_password_never_reaches_mlflow(leaky_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(leaky_run["summary"]["mlflow"])
    experiment = client.get_experiment_by_name("ceiling/secrets")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2  # the sweep's parent run and the trial's child run
    for run in runs:
        assert SECRET not in json.dumps({"params": run.data.params, "tags": run.data.tags})
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.data.tags["ceiling.store"] == redact(leaky_run["db"])  # the lead's tag: redacted
    assert "***" in parent.data.tags["ceiling.store"]


@pytest.mark.slow
def test_password_never_reaches_the_store_rows_or_the_ray_logs(leaky_run, ray_runtime):
    from orchestrator.store import Store

    store = Store.open(leaky_run["db"])
    with store.session() as session:
        for table in ("sweeps", "trials", "evals"):
            for row in session.execute(text(f"SELECT * FROM {table}")):
                assert SECRET not in json.dumps([str(v) for v in row]), table
    logs = Path(ray_runtime._private.worker._global_node.get_logs_dir_path())
    for path in logs.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path


def test_password_in_the_tracking_uri_never_reaches_output(leaky_run):
    spec_file = leaky_run["work"].parent / "secrets.yaml"
    tracking = f"postgresql://mlflow:{SECRET}@127.0.0.1:1/mlflow"  # never connected: nothing left to run
    for extra in (["--json"], []):
        result, output = _invoke(
            "run",
            str(spec_file),
            "--workdir",
            str(leaky_run["work"]),
            "--db",
            leaky_run["db"],
            "--tracking-uri",
            tracking,
            *extra,
        )
        assert result.exit_code == 0, output
        assert SECRET not in output


def test_tracking_display_uri_is_redacted(tmp_path: Path):
    tracking = SweepTracking.__new__(SweepTracking)
    tracking.uri = f"postgresql://mlflow:{SECRET}@db/mlflow"
    assert SECRET not in tracking.display_uri


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/abs",
        "a/b",
        "..",
        ".",
        "a\\b",
        "",
        " x",
        "x" * 65,
        "~root",
        "a\x00b",
        "caf\u00e9",
        "-rf",
        "a b",
    ],
    ids=repr,
)
def test_sweep_names_that_could_escape_the_work_folder_are_rejected(name: str, tmp_path: Path):
    with pytest.raises(SpecError) as info:
        parse_spec(TINY | {"name": name})
    assert info.value.problems[0].startswith("name: ")
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(TINY | {"name": name}, allow_unicode=True))
    work = tmp_path / "work"
    result = CliRunner().invoke(app, ["run", str(spec_file), "--workdir", str(work)])
    assert result.exit_code == 2 and "name:" in result.output
    assert not work.exists() and sorted(os.listdir(tmp_path)) == ["s.yaml"]


@pytest.mark.parametrize("name", ["a", "ladder-2024.v1", "A_b-c.d", "x" * 64])
def test_ordinary_names_are_accepted(name: str):
    assert parse_spec(TINY | {"name": name}).name == name
