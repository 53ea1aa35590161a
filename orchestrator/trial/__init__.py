"""The typed trial: frozen keyword-only dataclasses from planning to the worker, stored as plain JSON.

- ``config``: :class:`TrialConfig` (model, data, training, DeepSpeed and task parts) and ``trial_id``;
- ``parts``: the parts every kind of study shares; ``task_parts``: each kind's own part;
- ``planned``: :class:`PlannedTrial`, a config with its accounting, and :class:`PlanError`;
- ``frozen`` / ``records``: immutable JSON values and the strict dict <-> dataclass helpers.

Imports nothing but the standard library: the store and the dashboard read trials through it.
"""

from orchestrator.trial.config import TrialConfig, trial_id
from orchestrator.trial.frozen import FrozenMap, freeze, thaw
from orchestrator.trial.parts import TUNED, BranchPart, DataPart, DeepSpeedPart, ModelPart, TrainingPart
from orchestrator.trial.planned import PlanError, PlannedTrial
from orchestrator.trial.task_parts import (
    LadderPart,
    RecallPart,
    RecallTaskSettings,
    TaskPart,
    register_task_part,
    unregister_task_part,
)

__all__ = [
    "TUNED",
    "BranchPart",
    "DataPart",
    "DeepSpeedPart",
    "FrozenMap",
    "LadderPart",
    "ModelPart",
    "PlanError",
    "PlannedTrial",
    "RecallPart",
    "RecallTaskSettings",
    "TaskPart",
    "TrainingPart",
    "TrialConfig",
    "freeze",
    "register_task_part",
    "thaw",
    "trial_id",
    "unregister_task_part",
]
