"""Kinds of study: one registered object each, in the spirit of torchtitan's ``TrainSpec``.

A :class:`StudyKind` says how a sweep of its kind plans its trials, what a worker trains and
evaluates for one of them, and how their results aggregate into points. The dispatcher, the worker
and the front doors look a trial's kind up here (by the kind its config's task part names) instead
of branching on a kind's name; adding a kind is one module plus one ``register`` call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.kinds.efficiency import EFFICIENCY
from orchestrator.kinds.kind import StudyKind
from orchestrator.kinds.ladder import LADDER
from orchestrator.kinds.recall import RECALL
from orchestrator.trial import PlannedTrial, TrialConfig, register_task_part, unregister_task_part

# The built-in kinds; a new kind is one module plus its line here (or a register() call elsewhere).
_BUILT_IN = (LADDER.name, RECALL.name, EFFICIENCY.name)
# Order matters: later kinds are asked first (the efficiency study claims ladders with efficiency:).
_KINDS: dict[str, StudyKind] = {kind.name: kind for kind in (LADDER, RECALL, EFFICIENCY)}
register_task_part(
    EFFICIENCY.task_part
)  # not in orchestrator.trial: its stored configs parse once kinds load


def register(kind: StudyKind) -> StudyKind:
    """Add a kind (and its task part, so stored configs of its trials parse). Later kinds are asked first
    whether they select a spec, so a new kind can claim specs the built-in ones would take."""
    if kind.name != kind.task_part.kind:
        raise ValueError(
            f"kind {kind.name!r}: its task part {kind.task_part.__name__} names {kind.task_part.kind!r}"
        )
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"a kind of study named {kind.name!r} is registered already")
    register_task_part(kind.task_part)
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is a built-in kind of study; stored trials of it must stay readable")
    kind = _KINDS.pop(name, None)
    if kind is not None:
        unregister_task_part(kind.task_part)


@contextmanager
def registered(kind: StudyKind) -> Iterator[StudyKind]:
    """``kind`` registered for the duration of a ``with`` block (tests, experiments)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def kinds() -> list[StudyKind]:
    return list(_KINDS.values())


def kind_named(name: str) -> StudyKind:
    if name not in _KINDS:
        raise KeyError(f"unknown kind of study {name!r}; known: {', '.join(_KINDS)}")
    return _KINDS[name]


def kind_of(config: TrialConfig) -> StudyKind:
    """The kind a trial belongs to."""
    return kind_named(config.kind)


def kind_for_spec(spec: Any) -> StudyKind:
    """The kind a sweep spec describes: the most recently registered kind that selects it."""
    for kind in reversed(_KINDS.values()):
        if kind.selects(spec):
            return kind
    raise ValueError(f"sweep {spec.name!r}: no kind of study takes it; known: {', '.join(_KINDS)}")


def plan_trials(spec: Any, vocab_size: int) -> list[PlannedTrial]:
    """All trials of a sweep, planned by its kind, in the order they should be queued."""
    return kind_for_spec(spec).plan(spec, vocab_size)
