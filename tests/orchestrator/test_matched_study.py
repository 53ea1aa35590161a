"""The matched-study check: `ceiling plan` prints it; plan and run refuse an unmatched study (exit 2)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.matching import check_matched
from orchestrator.planning import plan_trials
from orchestrator.spec import parse_spec

SPEC = {
    "name": "matched",
    "architectures": ["transformer", "hawk"],
    "sizes": ["20k", "40k"],
    "budgets": {"tokens": [32768, 65536]},
    "data": {"seq_len": 64, "val_tokens": 8192},
    "training": {"batch_tokens": 2048},
}


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_plan_prints_every_check_for_a_matched_study(tmp_path: Path):
    result = CliRunner().invoke(app, ["plan", str(_write(tmp_path, SPEC))])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for item in ("data order", "tokens per budget: 32,768, 65,536", "batch (sequences per step): 32",
                 "seq_len: 64", "schedule shape"):
        assert f"ok {item}" in text, item


def test_token_counts_that_follow_params_are_refused_with_the_field(tmp_path: Path):
    spec = {**SPEC, "name": "ratio", "budgets": {"tokens_per_param": [2]}}
    path = _write(tmp_path, spec)
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "budgets.tokens_per_param: tokens per budget differs between architectures" in text
    assert "use budgets.tokens" in text and "--allow-unmatched" in text
    # run refuses too, before anything is written.
    workdir = tmp_path / "work"
    refused = CliRunner().invoke(app, ["run", str(path), "--workdir", str(workdir), "--no-mlflow"])
    assert refused.exit_code == 2 and not (workdir / "ceiling.db").exists()
    allowed = CliRunner().invoke(app, ["plan", str(path), "--allow-unmatched"])
    assert allowed.exit_code == 0 and "DIFFERS" in allowed.output


def test_learning_rates_may_differ_but_nothing_else():
    spec = parse_spec({**SPEC, "tuning": {"lrs": [1e-3, 3e-3], "tokens": 16384}})
    items = check_matched(spec, plan_trials(spec, 256))
    assert all(i.matched for i in items)
    single = parse_spec({**SPEC, "architectures": ["transformer"], "budgets": {"tokens_per_param": [2]}})
    assert all(i.matched for i in check_matched(single, plan_trials(single, 256)))
