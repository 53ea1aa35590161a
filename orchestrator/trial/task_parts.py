"""The part of a trial config that belongs to its kind of study, and how a stored config names its kind.

Each kind of study (``orchestrator.kinds``) has one task part type: what its trials carry beyond the
shared parts. Stored configs carry no kind name (adding one would change every trial id), so a part
type owns top-level keys of the config, and its first key, present only in its kind's configs, tells
a stored config's kind. ``register_task_part`` adds a new kind's part type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from orchestrator.trial.frozen import FrozenMap, freeze, thaw
from orchestrator.trial.records import OMIT_NONE, record_from_dict, record_to_dict


class TaskPart:
    """Base of the kind-specific parts. Subclasses are frozen keyword-only dataclasses."""

    kind: ClassVar[str]  # the name of the study kind whose trials carry this part
    keys: ClassVar[tuple[str, ...]]  # top-level config keys it owns; keys[0] marks its configs

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TaskPart:
        raise NotImplementedError


P = TypeVar("P", bound=type[TaskPart])
_PARTS: dict[str, type[TaskPart]] = {}  # marker key -> part type


def register_task_part(part: P) -> P:
    """Make stored configs carrying ``part.keys[0]`` parse as ``part`` (usable as a class decorator)."""
    marker = part.keys[0]
    known = _PARTS.get(marker)
    if known is not None and known is not part:
        raise ValueError(f"config key {marker!r} already marks {known.__name__} (kind {known.kind!r})")
    _PARTS[marker] = part
    return part


def unregister_task_part(part: type[TaskPart]) -> None:
    _PARTS.pop(part.keys[0], None)


def task_part_type(config: Mapping[str, Any]) -> type[TaskPart]:
    """The part type whose marker key ``config`` carries (exactly one must)."""
    found = [part for marker, part in _PARTS.items() if marker in config]
    if len(found) != 1:
        markers = ", ".join(f"{m!r} ({p.kind})" for m, p in _PARTS.items())
        raise ValueError(
            f"a trial config must carry exactly one kind marker of {markers}; found {len(found)}"
        )
    return found[0]


@register_task_part
@dataclass(frozen=True, kw_only=True)
class LadderPart(TaskPart):
    """A language-model ladder point: a corpus-trained model at a size and token budget."""

    kind: ClassVar[str] = "ladder"
    keys: ClassVar[tuple[str, ...]] = ("isoflop_budget",)

    isoflop_budget: float | None  # the compute budget of an isoFLOP design, else None

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> LadderPart:
        return record_from_dict(cls, {key: config[key] for key in cls.keys}, "ladder")


@dataclass(frozen=True, kw_only=True)
class RecallTaskSettings:
    """A recall task (stored as ``task``): its name, settings, and the generator's own knobs."""

    name: str  # mqar | copy
    train: tuple[FrozenMap, ...]  # the settings trained on, in turn ({seq_len, kv_pairs} or {length})
    test: tuple[FrozenMap, ...]  # the fixed test settings
    n_layers: int
    steps: int
    batch_size: int
    train_examples: int | None  # a fixed pool per train setting; None: a fresh batch every step
    test_examples: int
    # the generator's knobs: MQAR's three, copy's alphabet (a task's config has only its own)
    vocab_size: int | None = field(default=None, metadata=OMIT_NONE)
    power_a: float | None = field(default=None, metadata=OMIT_NONE)
    random_fillers: bool | None = field(default=None, metadata=OMIT_NONE)
    alphabet: int | None = field(default=None, metadata=OMIT_NONE)

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, task: Mapping[str, Any]) -> RecallTaskSettings:
        return record_from_dict(cls, task, "task")


@register_task_part
@dataclass(frozen=True, kw_only=True)
class RecallPart(TaskPart):
    """A recall-study point: a synthetic task, the model width and its state size per test setting."""

    kind: ClassVar[str] = "recall"
    keys: ClassVar[tuple[str, ...]] = ("task", "recall")

    task: RecallTaskSettings
    width: int
    state_sizes: FrozenMap  # test setting name -> numbers the model holds at that length
    hardest: str  # the hardest test setting's name

    def to_dict(self) -> dict[str, Any]:
        recall = {"width": self.width, "state_sizes": thaw(self.state_sizes), "hardest": self.hardest}
        return {"task": self.task.to_dict(), "recall": recall}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> RecallPart:
        recall = config["recall"]
        unknown = sorted(set(recall) - {"width", "state_sizes", "hardest"})
        if unknown:
            raise ValueError(f"recall: unknown key(s) {unknown}")
        return cls(
            task=RecallTaskSettings.from_dict(config["task"]),
            width=recall["width"],
            state_sizes=freeze(recall["state_sizes"]),
            hardest=recall["hardest"],
        )
