"""The efficiency study: an LM ladder whose every trained model is also measured for what it costs to use.

A sweep with an ``efficiency:`` block (spec.EfficiencySpec) trains the same trials a ladder would and,
at each law point's end, measures on rank 0: decode tokens/s and bytes of state (recurrent state or KV
cache) after prefilling L tokens, at each batch; prefill time by length; validation loss at multiples of
the training length, by position bucket (orchestrator/efficiency, bench/decode.py). The measurements go
to the store's ``efficiency_measurements`` table and MLflow; headline numbers (decode cost at each L,
state bytes, flatness, extrapolation) also become final metrics, so ``ceiling runs``, ``compare
--metric`` and laws read them like the loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.kinds.kind import StudyKind
from orchestrator.planning import plan_ladder
from orchestrator.trial import PlannedTrial, TaskPart, TrialConfig
from orchestrator.trial.records import OMIT_NONE, record_from_dict, record_to_dict


@dataclass(frozen=True, kw_only=True)
class EfficiencyPart(TaskPart):
    """A ladder point plus what to measure on it; stored as ``config["efficiency"]``.

    ``isoflop_budget`` lives inside this part (not at the top level as a ladder's does): a config's
    top-level keys name its kind, and ``isoflop_budget`` names the ladder's.
    """

    kind: ClassVar[str] = "efficiency"
    keys: ClassVar[tuple[str, ...]] = ("efficiency",)

    isoflop_budget: float | None
    contexts: tuple[int, ...]  # decode context lengths L
    batches: tuple[int, ...]
    decode_tokens: int
    max_batch_tokens: int  # a batch above 1 only where batch x L <= this
    extrapolation: tuple[int, ...]  # factors of the training sequence length
    extrapolation_tokens: int
    prefill: tuple[int, ...]  # empty: prefill speed from the decode's own prefills
    repeats: int
    # Added later, so left out of the stored form while None: trials planned without it keep their ids.
    train_lengths: tuple[int, ...] | None = field(default=None, metadata=OMIT_NONE)
    clock: str | None = field(default=None, metadata=OMIT_NONE)  # None: wall clock; "cpu": thread CPU time

    def to_dict(self) -> dict[str, Any]:
        return {"efficiency": record_to_dict(self)}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> EfficiencyPart:
        return record_from_dict(cls, config["efficiency"], "efficiency")

    @classmethod
    def from_spec(cls, efficiency: Any, isoflop_budget: float | None) -> EfficiencyPart:
        """From the sweep file's ``efficiency:`` block (spec.EfficiencySpec)."""
        return cls(
            isoflop_budget=isoflop_budget,
            contexts=tuple(efficiency.contexts),
            batches=tuple(efficiency.batches),
            decode_tokens=efficiency.decode_tokens,
            max_batch_tokens=efficiency.max_batch_tokens,
            extrapolation=tuple(efficiency.extrapolation),
            extrapolation_tokens=efficiency.extrapolation_tokens,
            prefill=tuple(efficiency.prefill or ()),
            repeats=efficiency.repeats,
            train_lengths=tuple(efficiency.train_lengths) if efficiency.train_lengths else None,
            clock=None if efficiency.clock == "wall" else efficiency.clock,
        )


def plan_efficiency(spec: Any, vocab_size: int) -> list[PlannedTrial]:
    """The ladder's trials, each carrying the efficiency part instead of the ladder's.

    The part is hashed into the id, so a branch's link to its trunk is re-pointed at the trunk's new id
    (the ladder lists trunks before their branches).
    """
    new_ids: dict[str, str] = {}
    out: list[PlannedTrial] = []
    for planned in plan_ladder(spec, vocab_size):
        config = planned.config
        branch = config.branch
        if branch is not None:
            branch = dataclasses.replace(branch, parent=new_ids[branch.parent])
        task = EfficiencyPart.from_spec(spec.efficiency, config.task.isoflop_budget)
        measured = dataclasses.replace(config, task=task, branch=branch)
        new_ids[planned.id] = measured.id
        out.append(PlannedTrial(config=measured, accounting=planned.accounting, lr=planned.lr))
    return out


def _efficiency_task(config: TrialConfig, data: Any) -> Any:
    from orchestrator.kinds.efficiency_task import EfficiencyTask

    return EfficiencyTask(config, data)


def _points(store: Any, sweep: str, metric: str | None = None, **options: Any) -> Any:
    """With a metric: law inputs of that metric (``ceiling laws / compare``); without: the study's table."""
    if metric is not None:
        from orchestrator.store.law_inputs import law_runs

        return law_runs(store, sweep, metric=metric, **options)
    from orchestrator.store.efficiency import efficiency_study

    return efficiency_study(store, sweep)


EFFICIENCY = StudyKind(
    name=EfficiencyPart.kind,
    summary="efficiency: decode cost and state bytes against context length, prefill time and length "
    "extrapolation, measured on every model of a language-model ladder",
    task_part=EfficiencyPart,
    selects=lambda spec: spec.task is None and getattr(spec, "efficiency", None) is not None,
    plan=plan_efficiency,
    make_task=_efficiency_task,
    points=_points,
)
