"""The parts of a trial config that every kind of study shares: model, data, training, DeepSpeed, branch.

Field names are the keys of the stored config (the store's ``trials.config`` JSON), so
``to_dict`` / ``from_dict`` are plain and the trial id, a hash of that JSON, is unchanged by typing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.trial.frozen import FrozenMap
from orchestrator.trial.records import OMIT_NONE, record_from_dict, record_to_dict

TUNED = "tuned"  # a trial's lr until its tuning choice is known (see orchestrator/tuning.py)


@dataclass(frozen=True, kw_only=True)
class ModelPart:
    """What is trained: a registered architecture at a resolved shape (``models.from_config(arch, shape)``)."""

    arch: str  # the registry name
    label: str  # the display name (a variant's own label)
    shape: FrozenMap  # the model's resolved config, stored as ``model``
    overrides: FrozenMap  # what the sweep file overrode (kept: it tells two variants apart)
    size_target: float  # the size planned for (non-embedding parameters)

    def to_dict(self) -> dict[str, Any]:
        out = record_to_dict(self)
        out["model"] = out.pop("shape")
        return out

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ModelPart:
        keys = {"arch": "arch", "label": "label", "shape": "model", "overrides": "overrides"}
        values = {name: config[key] for name, key in keys.items()}
        return record_from_dict(cls, {**values, "size_target": config["size_target"]}, "model")


@dataclass(frozen=True, kw_only=True)
class DataPart:
    """The corpus and how it is cut (a recall study generates its data and has none)."""

    corpus: str
    tokenizer: str
    bpe_vocab_size: int
    seq_len: int
    val_tokens: int
    val_fraction: float
    text_field: str

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataPart:
        return record_from_dict(cls, data, "data")


@dataclass(frozen=True, kw_only=True)
class TrainingPart:
    """Optimizer, schedule and intervals, resolved to steps."""

    min_lr_ratio: float
    warmup_frac: float
    schedule: str  # wsd | cosine | constant
    cooldown_frac: float
    weight_decay: float
    beta1: float
    beta2: float
    precision: str
    grad_clip: float
    eval_interval: int
    checkpoint_interval: int
    log_interval: int
    lr: float | str  # a value, or TUNED until the trial's tuning choice is made
    sequences_per_step: int
    warmup_steps: int
    cooldown_steps: int
    batch_tokens: int | None = field(default=None, metadata=OMIT_NONE)  # None: a batch of sequences
    # The spec's branches flag: a recall trial's config has always carried it (false); a ladder's drops
    # it (its trunk and branch say their schedule). Kept as it was: it is hashed into the id.
    branches: bool | None = field(default=None, metadata=OMIT_NONE)
    # Written into the stored config by the store when a tuned trial starts: a record, not an input
    # of the plan, so the trial id leaves it out (TrialConfig.canonical).
    beta2_chosen: float | None = field(default=None, metadata=OMIT_NONE)

    @property
    def tuned(self) -> bool:
        return self.lr == TUNED

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingPart:
        return record_from_dict(cls, data, "training")


@dataclass(frozen=True, kw_only=True)
class DeepSpeedPart:
    zero_stage: int
    preset: str | None
    overrides: FrozenMap

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeepSpeedPart:
        return record_from_dict(cls, data, "deepspeed")


@dataclass(frozen=True, kw_only=True)
class BranchPart:
    """A WSD cooldown branch: starts from its trunk's checkpoint at ``start_step``."""

    parent: str  # the trunk's trial id
    start_step: int
    # Set when this is the only branch from that checkpoint: it deletes the checkpoint once done.
    release_checkpoint: bool | None = field(default=None, metadata=OMIT_NONE)

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BranchPart:
        return record_from_dict(cls, data, "branch")
