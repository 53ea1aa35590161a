"""Design power: a design known to be degenerate is flagged with a fix that works; a design known
to be healthy is not; the reference law spans the planned loss range; `ceiling plan` reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from laws import design_power as dp
from orchestrator.cli import app
from tests.conftest import EXAMPLES


def grid_design(sizes, budgets, seeds: int = 1, branches: bool = False) -> dp.Design:
    n, d = np.meshgrid(np.asarray(sizes, float), np.asarray(budgets, float))
    return dp.design_from_points(np.repeat(n.ravel(), seeds), np.repeat(d.ravel(), seeds), branches=branches)


TWO_BUDGETS = grid_design(np.geomspace(25e3, 200e3, 4), [1e6, 2e6])  # the old quickstart
LADDER = grid_design(np.geomspace(8e3, 128e3, 5), np.geomspace(96e3, 768e3, 4), branches=True)


def test_reference_law_spans_the_planned_loss_range():
    law = dp.epoch_reference(LADDER, (1.7, 2.8))
    assert law.loss(np.array([8e3]), np.array([96e3]))[0] == pytest.approx(2.8)
    assert law.loss(np.array([128e3]), np.array([768e3]))[0] == pytest.approx(1.7)
    assert (law.alpha, law.beta) == (dp.EPOCH_EXPONENTS["alpha"], dp.EPOCH_EXPONENTS["beta"])
    assert law.E > 0


def test_a_design_with_two_budgets_is_flagged_with_a_fix_that_works():
    law = dp.epoch_reference(TWO_BUDGETS, (1.7, 2.8))
    result = dp.simulate(TWO_BUDGETS, law, n_sim=8, n_boot=20, n_jobs=1)
    assert result.likely_degenerate and result.shares["degenerate"] == 1.0
    assert "only 2 distinct token budgets" in result.top_reasons[0]
    fixes = [row for row in result.suggestions if row["fixes"]]
    assert fixes and "budget" in fixes[0]["change"]
    # Candidates are tried cheapest first; the first that fixes the design is the recommendation.
    tried = [row for row in result.suggestions if row["fixes"] is not None]
    assert [row["added_flops"] for row in tried] == sorted(row["added_flops"] for row in tried)
    assert tried[-1] is fixes[0]


def test_a_ladder_design_identifies_its_law():
    law = dp.epoch_reference(LADDER, (1.7, 2.8))
    result = dp.simulate(LADDER, law, n_sim=12, n_boot=30, n_jobs=1)
    assert not result.likely_degenerate
    assert result.shares["healthy"] >= 0.5
    alpha = result.exponent_ci["alpha"]
    assert alpha["lo"] < law.alpha < alpha["hi"] and alpha["median_span"] < 3
    assert result.backtest_error < 0.03
    assert result.suggestions == []  # nothing to fix


def test_seeds_count_and_cost():
    seeded = grid_design([1e4, 2e4, 4e4], [1e5, 2e5, 4e5], seeds=3)
    assert seeded.seeds == 3
    changes = dict(dp.candidate_designs(seeded))
    assert changes["run 4 seeds instead of 3"].params.size == 9 * 4
    # A budget below the trunk's end costs only its cooldown when budgets are branches.
    branch = dict(dp.candidate_designs(LADDER))
    added = branch[f"add a budget of {96e3 / 2:.3g} tokens (a cooldown branch)"].flops - LADDER.flops
    assert added == pytest.approx(6 * LADDER.sizes.sum() * 48e3 * 0.2)


def test_architectures_with_alike_designs_share_one_simulation():
    other = dp.design_from_points(LADDER.params * 1.02, LADDER.tokens, branches=True)
    calls = []
    results = dp.simulate_many(
        {"a": LADDER, "b": other},
        lambda name, design: dp.epoch_reference(LADDER, (1.7, 2.8)),
        n_sim=4,
        n_boot=10,
        suggest=False,
        progress=calls.append,
        n_jobs=1,
    )
    assert results["a"] is results["b"] and len(calls) == 1


def test_plan_reports_design_power_and_the_quickstart_plans_as_documented():
    result = CliRunner().invoke(
        app, ["plan", str(EXAMPLES / "quickstart.yaml"), "--json", "--simulations", "6"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    roles = [t["role"] for t in document["trials"]]
    # 2 architectures x 4 sizes: one trunk each and 3 cooldown branches (the README says 32 trials).
    assert len(roles) == 32 and roles.count("trunk") == 8 and roles.count("branch") == 24
    assert {t["arch"] for t in document["trials"]} == {"transformer", "rwkv6"}
    power = document["design_power"]
    assert set(power["architectures"]) == {"transformer", "rwkv6"}
    assert power["likely_degenerate"] == []
    for arch in power["architectures"].values():
        assert arch["budgets"] and len(arch["budgets"]) == 3 and arch["n_simulations"] == 6


def test_plan_warns_on_a_degenerate_design_and_names_the_fix(tmp_path):
    import yaml

    spec = yaml.safe_load((EXAMPLES / "smoke.yaml").read_text())
    spec["sizes"] = ["20k", "30k", "45k", "70k"]  # 4 sizes x 2 budgets: beta cannot be identified
    path = tmp_path / "two-budgets.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["plan", str(path), "--simulations", "4"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "likely to give a degenerate law (only 2 distinct token budgets" in text
    assert "cheapest fix: add a budget" in text
    # The smoke sweep (4 runs) cannot fit five parameters, and one more size or budget is not enough.
    smoke = CliRunner().invoke(app, ["plan", str(EXAMPLES / "smoke.yaml"), "--simulations", "4"])
    assert "no single simulated change fixes it" in " ".join(smoke.output.split())
    off = CliRunner().invoke(app, ["plan", str(EXAMPLES / "smoke.yaml"), "--no-power", "--json"])
    assert json.loads(off.stdout)["design_power"] is None
    bad = CliRunner().invoke(app, ["plan", str(EXAMPLES / "smoke.yaml"), "--noise", "3"])
    assert bad.exit_code == 2 and "--noise" in bad.output
