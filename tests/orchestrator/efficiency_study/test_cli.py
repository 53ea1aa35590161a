"""The efficiency metrics through the CLI: `ceiling laws --cost` (loss against inference cost),
`ceiling compare --metric` on an efficiency metric, `ceiling runs --efficiency`, and the input errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.orchestrator.efficiency_study.stored_study import SWEEP, store_study


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> list[str]:
    path = tmp_path_factory.mktemp("eff-cli") / "study.db"
    store_study(f"sqlite:///{path}")
    return ["--db", str(path)]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_law_of_loss_against_inference_cost(db):
    result = invoke(
        "laws",
        SWEEP,
        "--form",
        "power_c",
        "--cost",
        "decode_ms_per_token_L8192",
        "--n-boot",
        "20",
        "--json",
        *db,
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["cost"] == "decode_ms_per_token_L8192" and document["metric"] == "val_loss"
    assert set(document["fits"]) == {"mamba", "mega", "retnet", "transformer"}
    assert all(fit["form"] == "power_c" for fit in document["fits"].values())


def test_compare_accepts_an_efficiency_metric(db):
    result = invoke(
        "compare",
        SWEEP,
        "--metric",
        "decode_ms_per_token_L8192",
        "--form",
        "power_c",
        "--n-boot",
        "20",
        "--json",
        *db,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metric"] == "decode_ms_per_token_L8192"


def test_unknown_efficiency_names_are_input_errors(db):
    result = invoke("laws", SWEEP, "--cost", "decode_ms", *db)
    assert result.exit_code == 2 and "--cost: unknown metric 'decode_ms'" in result.output
    result = invoke("laws", SWEEP, "--metric", "state_bytes", *db)
    assert result.exit_code == 2 and "--metric: unknown metric 'state_bytes'" in result.output


def test_runs_exports_the_measurements(db):
    result = invoke("runs", SWEEP, "--efficiency", "--json", *db)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["measurements"]
    assert {r["label"] for r in rows} == {"mamba", "mega", "retnet", "transformer"}
    assert {r["measure"] for r in rows} == {"decode", "prefill", "extrapolation", "position"}
