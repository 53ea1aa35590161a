"""The one place a trial config is built from a sweep spec; every kind's planner calls it.

Two planners once wrote the config dict by hand, and a drift between them would have changed trial
ids silently; here each kind passes only what differs (its task part, its batch, its data).
``spec`` and ``arch`` are the sweep file's pydantic objects (``SweepSpec``, ``ArchitectureEntry``),
read by attribute: the trial package stays free of the spec's imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.trial.config import TrialConfig
from orchestrator.trial.frozen import freeze
from orchestrator.trial.parts import TUNED, BranchPart, DataPart, DeepSpeedPart, ModelPart, TrainingPart
from orchestrator.trial.planned import PlannedTrial
from orchestrator.trial.task_parts import TaskPart

_RUN_ONLY = {"lr", "micro_batch_size", "max_loss"}  # how a trial runs, or set below: not the spec's copy


def training_part(
    spec: Any,
    *,
    lr: float | str,
    sequences_per_step: int,
    warmup_steps: int,
    cooldown_steps: int,
    batch_in_tokens: bool,
    beta2: float | None = None,
) -> TrainingPart:
    """The spec's training block resolved to one trial's steps.

    ``batch_in_tokens``: the batch is ``training.batch_tokens`` (a ladder); else a number of sequences
    (a recall task), and the config keeps ``branches`` instead, as recall configs always have.
    """
    training = spec.training
    values = training.model_dump(mode="json", exclude=_RUN_ONLY)
    values.pop("branches" if batch_in_tokens else "batch_tokens")
    values |= {
        "lr": lr,
        "sequences_per_step": sequences_per_step,
        "warmup_steps": warmup_steps,
        "cooldown_steps": cooldown_steps,
        "checkpoint_interval": training.checkpoint_interval or training.eval_interval,
    }
    if beta2 is not None:
        values["beta2"] = beta2
    return TrainingPart.from_dict(values)


def planned_trial(
    spec: Any,
    *,
    arch: Any,
    accounting: Mapping[str, Any],
    size_target: float,
    task: TaskPart,
    training: TrainingPart,
    seed: int,
    steps: int,
    tokens: int,
    nominal_lr: float,
    with_data: bool,
    role: str = "main",
    branch: BranchPart | None = None,
    branch_starts: list[int] | None = None,
) -> PlannedTrial:
    """One trial of a sweep. ``nominal_lr``: the spec's lr for this size, shown until a TUNED lr is chosen."""
    config = TrialConfig(
        model=ModelPart(
            arch=arch.name,
            label=arch.display_name,
            shape=freeze(accounting["config"]),
            overrides=freeze(arch.overrides),
            size_target=size_target,
        ),
        data=DataPart.from_dict(spec.data.model_dump(mode="json")) if with_data else None,
        training=training,
        deepspeed=DeepSpeedPart.from_dict(spec.deepspeed.model_dump(mode="json")),
        task=task,
        seed=seed,
        tokens=tokens,
        steps=steps,
        role=role,
        # a tuned trial hashes the tuning spec its lr will be chosen by, not a value
        tuning=freeze(spec.tuning.model_dump(mode="json")) if training.lr == TUNED else None,
        branch=branch,
        branch_starts=tuple(branch_starts) if branch_starts is not None else None,
    )
    lr = nominal_lr if training.lr == TUNED else float(training.lr)
    return PlannedTrial(config=config, accounting=freeze(accounting), lr=lr)
