"""The matched-study check: `ceiling plan` prints it; plan and run refuse an unmatched study (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator import matching
from orchestrator.cli import app
from orchestrator.kinds import plan_trials
from orchestrator.matching import check_matched
from orchestrator.spec import parse_spec
from orchestrator.trial import PlannedTrial

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
    for item in (
        "data order",
        "tokens per budget: 32,768, 65,536",
        "batch (sequences per step): 32",
        "seq_len: 64",
        "schedule shape",
    ):
        assert f"ok {item}" in text, item


def test_an_unmatched_study_is_refused_with_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Planning matches every spec it accepts today, so one architecture's tokens are skewed here to
    # see the guard refuse (plan and run exit 2, naming the field) and --allow-unmatched let it pass.
    real = matching._signatures

    def skewed(trial: PlannedTrial) -> dict[str, Any]:
        signatures = real(trial)
        if trial.arch == "hawk":
            signatures["tokens per budget"] += SPEC["training"]["batch_tokens"]
        return signatures

    monkeypatch.setattr(matching, "_signatures", skewed)
    spec = {**SPEC, "name": "ratio", "budgets": {"tokens_per_param": [2]}}
    path = _write(tmp_path, spec)
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "budgets.tokens_per_param: tokens per budget differs between architectures" in text
    assert "give every architecture the same budgets" in text and "--allow-unmatched" in text
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


@pytest.mark.parametrize(
    "budgets",
    [{"tokens_per_param": [20, 40]}, {"isoflop": {"budgets": [3e11, 1e12], "points": 3}}],
    ids=["tokens_per_param", "isoflop"],
)
def test_budgets_that_scale_with_size_match_every_architecture(tmp_path: Path, budgets: dict):
    import models

    architectures = models.available()
    assert len(architectures) >= 12
    spec = {
        **SPEC,
        "name": "every-arch",
        "architectures": architectures,
        "sizes": ["16k", "64k", "256k"],
        "budgets": budgets,
    }
    result = CliRunner().invoke(app, ["plan", str(_write(tmp_path, spec)), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert all(item["matched"] for item in plan["matched"]), plan["matched"]
    by_size: dict[float, dict[str, list[tuple[int, int]]]] = {}
    for trial in plan["trials"]:
        by_size.setdefault(trial["size_target"], {}).setdefault(trial["arch"], []).append(
            (trial["tokens"], trial["steps_total"])
        )
        # Tokens follow the target size (to whole batches); FLOPs stay the realised model's.
        size, batch = trial["size_target"], SPEC["training"]["batch_tokens"]
        compute = trial["config"]["isoflop_budget"]
        wanted = compute / (6 * size) if compute else None
        assert wanted is None or abs(trial["tokens"] - wanted) <= batch / 2
        assert trial["flops_6nd"] == pytest.approx(6 * trial["params_non_embedding"] * trial["tokens"])
    assert len(by_size) == 3
    for size, per_arch in by_size.items():
        assert set(per_arch) == set(architectures)
        reference = per_arch["transformer"]
        assert all(runs == reference for runs in per_arch.values()), (size, per_arch)
    if "tokens_per_param" in budgets:
        for size, per_arch in by_size.items():
            assert [tokens for tokens, _ in per_arch["transformer"]] == [
                round(ratio * size / 2048) * 2048 for ratio in (20, 40)
            ]
