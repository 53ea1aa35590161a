"""The trial config: one frozen, typed object per trial, from planning to the worker that trains it.

Its stored form is the store's ``trials.config`` JSON, exactly as before it was typed, and its id is
a hash of that form's canonical JSON: ``to_dict`` / ``from_dict`` round-trip every stored config,
so old stores keep working and a trial planned today gets the id it always had (see
tests/orchestrator/test_trial_ids.py). Later stages read attributes, never string keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.trial.frozen import FrozenMap, freeze, thaw
from orchestrator.trial.parts import BranchPart, DataPart, DeepSpeedPart, ModelPart, TrainingPart
from orchestrator.trial.task_parts import TaskPart, task_part_type

_OWN_KEYS = (
    "arch",
    "label",
    "model",
    "overrides",
    "size_target",
    "seed",
    "tokens",
    "steps",
    "data",
    "training",
) + ("deepspeed", "role", "tuning", "branch", "branch_starts")


def trial_id(config: Mapping[str, Any]) -> str:
    """The id of a stored-form config: the first 16 hex digits of the SHA-256 of its canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    model: ModelPart
    data: DataPart | None  # None: the kind generates its own data (a recall task)
    training: TrainingPart
    deepspeed: DeepSpeedPart
    task: TaskPart  # the kind of study's own part; ``task.kind`` names the kind
    seed: int
    tokens: int  # the budget: every optimizer step's tokens, summed
    steps: int
    role: str = "main"  # main | trunk | branch | tuning (see orchestrator/store/schema.py)
    tuning: FrozenMap | None = None  # the tuning spec a TUNED lr is chosen by
    branch: BranchPart | None = None  # a cooldown branch's trunk and start step
    branch_starts: tuple[int, ...] | None = None  # a trunk keeps a checkpoint at each

    @property
    def kind(self) -> str:
        return self.task.kind

    @property
    def id(self) -> str:
        return trial_id(self.canonical())

    def to_dict(self) -> dict[str, Any]:
        """The stored form (plain JSON types), key for key what the store's ``config`` column holds."""
        out: dict[str, Any] = {
            **self.model.to_dict(),
            "seed": self.seed,
            "tokens": self.tokens,
            "steps": self.steps,
            **self.task.to_dict(),
            "training": self.training.to_dict(),
            "deepspeed": self.deepspeed.to_dict(),
        }
        if self.data is not None:
            out["data"] = self.data.to_dict()
        # Non-main roles and their links only: a plain trial's id is the one it had before they existed.
        if self.role != "main":
            out["role"] = self.role
        if self.tuning is not None:
            out["tuning"] = thaw(self.tuning)
        if self.branch is not None:
            out["branch"] = self.branch.to_dict()
        if self.branch_starts is not None:
            out["branch_starts"] = list(self.branch_starts)
        return out

    def canonical(self) -> dict[str, Any]:
        """What the id hashes: the stored form less what is recorded after planning (beta2_chosen)."""
        out = self.to_dict()
        out["training"].pop("beta2_chosen", None)
        return out

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TrialConfig:
        """Parse a stored config; a ValueError names a key it does not know or misses."""
        part = task_part_type(config)
        unknown = sorted(set(config) - set(_OWN_KEYS) - set(part.keys))
        if unknown:
            raise ValueError(f"trial config: unknown key(s) {unknown}")
        try:
            return cls(
                model=ModelPart.from_dict(config),
                data=DataPart.from_dict(config["data"]) if "data" in config else None,
                training=TrainingPart.from_dict(config["training"]),
                deepspeed=DeepSpeedPart.from_dict(config["deepspeed"]),
                task=part.from_dict(config),
                seed=config["seed"],
                tokens=config["tokens"],
                steps=config["steps"],
                role=config.get("role", "main"),
                tuning=freeze(config["tuning"]) if "tuning" in config else None,
                branch=BranchPart.from_dict(config["branch"]) if "branch" in config else None,
                branch_starts=tuple(config["branch_starts"]) if "branch_starts" in config else None,
            )
        except KeyError as exc:
            raise ValueError(f"trial config: missing key {exc}") from None

    def with_training(self, **changes: Any) -> TrialConfig:
        """A copy with training settings replaced, e.g. a tuned trial's chosen ``lr`` and ``beta2``."""
        return dataclasses.replace(self, training=dataclasses.replace(self.training, **changes))
