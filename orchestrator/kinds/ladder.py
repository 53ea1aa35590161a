"""The language-model ladder: architectures x sizes x token budgets x seeds trained on a corpus, whose
final losses are fitted as scaling laws. A sweep without a ``task:`` block is one."""

from __future__ import annotations

from typing import Any

from orchestrator.kinds.kind import StudyKind
from orchestrator.planning import plan_ladder
from orchestrator.trial import LadderPart, TrialConfig


def _lm_task(config: TrialConfig, data: Any) -> Any:
    from orchestrator.training.lm_task import LmTask

    return LmTask(config, data)


def _law_points(store: Any, sweep: str, metric: str | None = None, **options: Any) -> Any:
    from orchestrator.store.law_inputs import law_runs

    return law_runs(store, sweep, metric=metric or "val_loss", **options)


LADDER = StudyKind(
    name=LadderPart.kind,
    summary="language-model scaling ladder: loss against size and tokens, fitted as laws",
    task_part=LadderPart,
    selects=lambda spec: spec.task is None,
    plan=plan_ladder,
    make_task=_lm_task,
    points=_law_points,
)
