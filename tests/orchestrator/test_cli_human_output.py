"""Human output of the sweep commands: counts in words, and tables at full width outside a terminal.

CliRunner's stdout and stderr are not terminals, like a log file, CI or a pipe: rich would give them
80 columns and cut cells to `tran…`. The sweep is stored and marked finished without training, so
`ceiling run` has nothing to run (no Ray) and prints its summary at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.scheduling.runner import prepare_sweep
from orchestrator.spec import load_spec
from tests.conftest import EXAMPLES

SMOKE = EXAMPLES / "smoke.yaml"


@pytest.fixture(autouse=True)
def no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # an explicit COLUMNS is honoured; not set in CI


@pytest.fixture
def finished_smoke(tmp_path: Path) -> Path:
    """The smoke sweep in a work folder, its trials finished (three done, one diverged) without training."""
    spec = load_spec(SMOKE)
    context = prepare_sweep(
        spec,
        workdir=tmp_path,
        db_url=f"sqlite:///{tmp_path / 'ceiling.db'}",
        tracking_uri=None,
        console=Console(quiet=True),
    )
    store = context.store
    for index, trial in enumerate(context.trials):
        attempt = store.claim(trial.id)
        if index == 0:
            store.fail(trial.id, attempt, "loss 1e9 > max_loss", status="diverged")
        else:
            store.finish(trial.id, attempt, final_val_loss=3.0, final_val_bpb=4.3, wall_time_s=1.0)
    return tmp_path


def _uncut(text: str) -> None:
    assert "transformer" in text and "…" not in text, text


def test_plan_table_is_full_width_when_stdout_is_not_a_terminal():
    result = CliRunner().invoke(app, ["plan", str(SMOKE)])
    assert result.exit_code == 0, result.output
    _uncut(result.stdout)
    assert "non-emb params" in result.stdout and "FLOPs (exact)" in result.stdout


def test_run_says_status_counts_in_words_and_json_keeps_the_mapping(finished_smoke: Path):
    args = ["run", str(SMOKE), "--workdir", str(finished_smoke), "--no-mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "status: 3 done, 1 diverged" in result.stdout
    assert "{'" not in result.output
    _uncut(result.stdout)
    as_json = CliRunner().invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["status"] == {"done": 3, "diverged": 1}


def test_status_and_runs_are_for_people_too(finished_smoke: Path):
    listed = CliRunner().invoke(app, ["status", "--workdir", str(finished_smoke)])
    assert listed.exit_code == 0, listed.output
    assert "smoke: 3 done, 1 diverged" in listed.stdout
    for command in (["status", "smoke"], ["runs", "smoke"]):
        result = CliRunner().invoke(app, [*command, "--workdir", str(finished_smoke)])
        assert result.exit_code == 0, result.output
        _uncut(result.stdout)
