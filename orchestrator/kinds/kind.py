"""What a kind of study provides: the :class:`StudyKind` record, and the defaults most kinds keep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.trial import PlannedTrial, TaskPart, TrialConfig


def sweep_micro_batch(config: TrialConfig, spec: Any, default: int) -> int:
    """The micro batch the sweep chose for all its trials (orchestrator.scheduling.runner)."""
    return default


def corpus_fingerprint(config: TrialConfig, data: Any) -> str:
    """The prepared corpus's fingerprint: what the trial's data came from."""
    return data.fingerprint


def corpus_line(spec: Any, data: Any) -> str:
    """`ceiling plan`'s line about the data: the corpus, its fingerprint and split sizes."""
    from orchestrator.units import format_count

    return (
        f"corpus {spec.data.corpus!r}: fingerprint {data.fingerprint}, "
        f"{format_count(data.train_tokens)} train / {format_count(data.val_tokens)} val tokens"
    )


@dataclass(frozen=True, kw_only=True)
class StudyKind:
    name: str  # the kind its trials' task part names (``task_part.kind``)
    summary: str  # one line for people: what a study of this kind measures
    task_part: type[TaskPart]  # what its trial configs carry beyond the shared parts
    selects: Callable[[Any], bool]  # (SweepSpec) -> is this sweep a study of this kind?
    plan: Callable[[Any, int], list[PlannedTrial]]  # (SweepSpec, corpus vocab size) -> trials, in run order
    # (TrialConfig, PreparedData) -> the task a worker trains on and evaluates (see training/task.py)
    make_task: Callable[[TrialConfig, Any], Any]
    # (Store, sweep name, metric or None, **options) -> its results aggregated into points: the ladder's
    # law inputs (what laws, the dashboard and the report fit), the recall study's accuracy table
    points: Callable[..., Any]
    micro_batch_size: Callable[[TrialConfig, Any, int], int] = sweep_micro_batch
    data_fingerprint: Callable[[TrialConfig, Any], str] = corpus_fingerprint
    describe_data: Callable[[Any, Any], str] = corpus_line  # (SweepSpec, PreparedData) -> a line for people
    # Whether the matched-study check and design power apply (architectures compared on one ladder).
    compares_scaling: bool = True
