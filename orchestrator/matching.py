"""The matched-study check: every architecture of a study trains on the same data, tokens and schedule.

A comparison between architectures is fair only if nothing but the architecture differs. Per
architecture we list, for each of its law points in plan order (size x budget x seed), the data
order (corpus settings and seed), the tokens, the batch, the sequence length and the schedule shape
(kind, warmup and cooldown steps, final ratio); every architecture's list must be identical.
Learning rates may differ (they are tuned per architecture); model shapes of course do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchestrator.kinds import kind_for_spec
from orchestrator.spec import SweepSpec
from orchestrator.trial import PlannedTrial


@dataclass(frozen=True)
class MatchItem:
    item: str  # what is compared, e.g. "tokens per budget"
    matched: bool
    detail: str  # the common value, or what differs
    field: str  # the spec field to change when not matched
    fix: str


def _signatures(trial: PlannedTrial) -> dict[str, Any]:
    config, training = trial.config, trial.config.training
    return {
        # the held-out size does not change the data order
        "data order (corpus, seed)": (replace(config.data, val_tokens=0), config.seed),
        "tokens per budget": trial.tokens,
        "batch (sequences per step)": training.sequences_per_step,
        "seq_len": trial.accounting.get("seq_len", config.data.seq_len),
        "schedule shape": (
            training.schedule,
            training.warmup_steps,
            training.cooldown_steps,
            training.min_lr_ratio,
            trial.steps,
            config.branch.start_step if config.branch else None,
        ),
    }


_FIXES = {
    "data order (corpus, seed)": ("seeds / data", "give every architecture the same data: and seeds:"),
    "tokens per budget": (
        "budgets",
        "give every architecture the same budgets: budgets.tokens, or tokens_per_param / isoflop, whose "
        "token counts follow the target sizes",
    ),
    "batch (sequences per step)": ("training.batch_tokens", "use one training.batch_tokens for the study"),
    "seq_len": ("data.seq_len", "remove per-architecture seq_len overrides"),
    "schedule shape": (
        "training / budgets",
        "the schedule's warmup and cooldown follow each trial's steps: give every architecture the same "
        "budgets so steps match",
    ),
}


def _describe(item: str, value: Any) -> str:
    if item == "data order (corpus, seed)":
        data, _ = value
        return f"corpus {data.corpus!r} ({data.tokenizer}), batches drawn from (seed, step)"
    return str(value)


def check_matched(spec: SweepSpec, trials: list[PlannedTrial]) -> list[MatchItem]:
    """One :class:`MatchItem` per compared property; all ``matched`` for a single-architecture study.

    A kind of study that does not compare scaling ladders (the recall study generates the same task
    data for every architecture by construction and sweeps learning rates itself) has nothing to check
    here (an empty list).
    """
    if not kind_for_spec(spec).compares_scaling:
        return []
    per_arch: dict[str, list[dict[str, Any]]] = {}
    for trial in trials:
        if trial.role in ("main", "branch"):
            per_arch.setdefault(trial.label, []).append(_signatures(trial))
    labels = list(per_arch)
    items: list[MatchItem] = []
    for item, (field, fix) in _FIXES.items():
        columns = {label: [sig[item] for sig in per_arch[label]] for label in labels}
        reference_label = labels[0] if labels else None
        reference = columns.get(reference_label, [])
        differs = [label for label in labels[1:] if columns[label] != reference]
        if not differs:
            values = sorted({str(v) for v in reference}) if item != "data order (corpus, seed)" else []
            if item == "data order (corpus, seed)":
                detail = (_describe(item, reference[0]) if reference else "-") + f"; seeds {list(spec.seeds)}"
            elif item == "tokens per budget":
                detail = ", ".join(
                    sorted({f"{v:,}" for v in reference}, key=lambda s: int(s.replace(",", "")))
                )
            elif item == "schedule shape":
                shapes = sorted({(v[0], v[1], v[2]) for v in reference}, key=str)
                detail = "; ".join(f"{k} warmup {w} cooldown {c}" for k, w, c in shapes[:4]) + (
                    " ..." if len(shapes) > 4 else ""
                )
            else:
                detail = ", ".join(values)
            items.append(MatchItem(item, True, detail or "-", field, fix))
            continue
        other = differs[0]
        first = next(
            (i for i, (a, b) in enumerate(zip(reference, columns[other], strict=False)) if a != b),
            min(len(reference), len(columns[other])),
        )
        mine = reference[first] if first < len(reference) else "(missing)"
        theirs = columns[other][first] if first < len(columns[other]) else "(missing)"
        detail = f"{reference_label} has {_short(item, mine)} but {other} has {_short(item, theirs)} (point {first})"
        if item in ("tokens per budget", "schedule shape") and spec.budgets is not None:
            kind = next(
                k for k in ("tokens", "tokens_per_param", "isoflop") if getattr(spec.budgets, k) is not None
            )
            field = f"budgets.{kind}"
        items.append(MatchItem(item, False, detail, field, fix))
    return items


def _short(item: str, value: Any) -> str:
    if item == "data order (corpus, seed)" and isinstance(value, tuple):
        return f"seed {value[1]}"
    if item == "tokens per budget" and isinstance(value, int | float):
        return f"{value:,} tokens"
    return str(value)


def unmatched_message(items: list[MatchItem]) -> str:
    bad = [i for i in items if not i.matched]
    lines = [f"{i.field}: {i.item} differs between architectures: {i.detail}; {i.fix}" for i in bad]
    return (
        "the study is not matched:\n  " + "\n  ".join(lines) + "\n  (pass --allow-unmatched to run it anyway)"
    )
