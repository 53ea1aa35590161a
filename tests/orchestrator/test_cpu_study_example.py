"""examples/cpu-study.yaml stays what it claims: every architecture, >= 4 sizes x 2 budgets, tuned,
cooldown branches, matched, and (by `ceiling plan`'s own estimate) well under an hour on 2 cores."""

from __future__ import annotations

import models
from orchestrator.data.tokenizer import BYTE_VOCAB
from orchestrator.kinds import plan_trials
from orchestrator.matching import check_matched
from orchestrator.planning import flops_saved, makespan_seconds
from orchestrator.spec import load_spec
from tests.conftest import EXAMPLES


def test_cpu_study_covers_every_architecture_tuned_and_branched():
    spec = load_spec(EXAMPLES / "cpu-study.yaml")
    assert sorted(a.name for a in spec.architectures) == sorted(models.available())
    assert len(spec.sizes) >= 4 and len(spec.budgets.tokens) == 2
    assert spec.tuning is not None and spec.training.branches
    trials = plan_trials(spec, BYTE_VOCAB)
    assert all(item.matched for item in check_matched(spec, trials))
    roles = {role: sum(t.role == role for t in trials) for role in ("tuning", "trunk", "branch", "main")}
    per_arch = len(spec.sizes)
    assert roles["trunk"] == 12 * per_arch and roles["branch"] == 12 * per_arch * 2 and roles["main"] == 0
    assert flops_saved(trials)["ratio"] > 1.2
    assert makespan_seconds(trials, spec) < 45 * 60
