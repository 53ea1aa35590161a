"""The language-model ladder's trials: architecture x size x token budget x seed.

Each trial carries its fully resolved configuration (model shape, tokens, steps, learning rate, data,
schedule, DeepSpeed settings), a typed :class:`orchestrator.trial.TrialConfig` built by
``orchestrator.trial.build``; its id is a hash of that configuration, so the same trial submitted
twice (even from another sweep) is stored, and run, once. How a trial is *executed* (workers, micro
batch) is kept out of the hash: it must not change the result. ``orchestrator.kinds`` picks this
planner for a sweep without a ``task:`` block.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.spec import SweepSpec
from orchestrator.trial import TUNED, BranchPart, LadderPart, PlanError, PlannedTrial
from orchestrator.trial.build import planned_trial, training_part

# Rough effective throughputs for `ceiling plan`'s time estimate (small models are far from peak).
CPU_FLOPS_PER_CORE = 3e9
GPU_FLOPS_PER_DEVICE = 1e14
MIN_STEPS = 4

__all__ = ["TUNED", "PlanError", "PlannedTrial", "plan_ladder", "resolve_lr"]


def resolve_lr(spec: SweepSpec, non_embedding_params: float) -> float:
    lr = spec.training.lr
    if isinstance(lr, float | int):
        return float(lr)
    return float(lr.base * (non_embedding_params / lr.ref_params) ** lr.exponent)


def _size_points(spec: SweepSpec) -> list[tuple[float, float | None]]:
    """(target size, compute budget or None) pairs."""
    if spec.budgets.isoflop is None:
        return [(size, None) for size in spec.sizes]
    low, high = min(spec.sizes), max(spec.sizes)
    if low == high:
        raise PlanError("sizes: an isoFLOP design needs at least two different sizes (the range to sweep)")
    points = np.geomspace(low, high, spec.budgets.isoflop.points)
    return [(float(size), budget) for budget in spec.budgets.isoflop.budgets for size in points]


def plan_ladder(spec: SweepSpec, vocab_size: int) -> list[PlannedTrial]:
    """All trials of a language-model ladder, in a stable order (architecture, size, budget, seed)."""
    import models

    tokens_per_step = spec.training.batch_tokens
    trials: list[PlannedTrial] = []
    for arch_index, arch in enumerate(spec.architectures):
        for size, compute in _size_points(spec):
            try:
                acc = models.describe(
                    arch.name,
                    size=int(size),
                    vocab_size=vocab_size,
                    seq_len=spec.data.seq_len,
                    **arch.overrides,
                )
            except (ValueError, TypeError) as exc:
                raise PlanError(
                    f"architectures[{arch_index}] ({arch.name}) at size {size:.3g}: {exc}"
                ) from None
            kind = "tokens" if spec.budgets.tokens is not None else "tokens_per_param"
            budgets = _token_budgets(spec, size, compute)
            budget_steps = []
            for budget_index, wanted_tokens in enumerate(budgets):
                where = "budgets.isoflop" if compute is not None else f"budgets.{kind}[{budget_index}]"
                budget_steps.append(_steps(wanted_tokens, tokens_per_step, where, arch.display_name, size))
            point = (spec, arch, acc, size)  # what every trial at this (architecture, size) shares
            if spec.tuning is not None and size in tuned_sizes(spec):
                trials += _tuning_trials(point, tokens_per_step)
            lr: float | str | None = TUNED if spec.tuning is not None else None
            if spec.training.branches:
                trials += _branched(point, budget_steps, compute, lr)
                continue
            for steps in budget_steps:
                for seed in spec.seeds:
                    trials.append(_resolve(*point, steps, seed, compute, lr=lr))
    # Tuning trials first, then trunks: the trials that wait on them come later in the queue.
    order = {"tuning": 0, "trunk": 1}
    return sorted(trials, key=lambda t: order.get(t.role, 2))


def _token_budgets(spec: SweepSpec, size: float, compute: float | None) -> list[float]:
    """Tokens wanted per budget at one target size.

    Ratios and isoFLOP budgets scale with the *target* size (what ``sizes:`` says), not with the
    parameters an architecture's shape realises (close to it, but different per architecture): so
    every architecture at one size trains on the same tokens and steps, and the study stays matched.
    The trials' FLOPs are still each model's exact ones.
    """
    if compute is not None:
        return [compute / (6 * size)]  # C = 6 N D with N the target size
    if spec.budgets.tokens is not None:
        return list(spec.budgets.tokens)
    return [ratio * size for ratio in spec.budgets.tokens_per_param]


def _steps(wanted_tokens: float, tokens_per_step: int, where: str, label: str, size: float) -> int:
    steps = max(1, round(wanted_tokens / tokens_per_step))
    if steps < MIN_STEPS:
        raise PlanError(
            f"{where}: {wanted_tokens:.3g} tokens for {label} at size {size:.3g} is "
            f"{wanted_tokens / tokens_per_step:.2g} steps of training.batch_tokens={tokens_per_step}; "
            f"need at least {MIN_STEPS} steps: raise the budget or lower training.batch_tokens"
        )
    return steps


def tuned_sizes(spec: SweepSpec) -> list[float]:
    """The sizes that get their own learning-rate search (``tuning.sizes``: all, or the K smallest)."""
    sizes = sorted(set(spec.sizes or []))
    k = spec.tuning.smallest if spec.tuning is not None else None
    return sizes if k is None else sizes[:k]


def _tuning_trials(point: tuple, tokens_per_step: int) -> list[PlannedTrial]:
    """One short run per candidate (lr x beta2) at the first seed; role ``tuning``, never a law point."""
    spec, label, size = point[0], point[1].display_name, point[3]
    tuning = spec.tuning
    steps = _steps(tuning.tokens, tokens_per_step, "tuning.tokens", label, size)
    return [
        _resolve(*point, steps, spec.seeds[0], None, lr=lr, role="tuning", beta2=beta2)
        for lr in tuning.lrs
        for beta2 in tuning.beta2s or [None]
    ]


def _branched(
    point: tuple, budget_steps: list[int], compute: float | None, lr: float | str | None
) -> list[PlannedTrial]:
    """WSD cooldown branches: per seed, one constant-LR trunk and one branch per budget.

    A budget of S steps with a cooldown of C steps is the trunk's first S - C steps plus its own C-step
    cooldown, which is exactly an independent WSD run of S steps provided warmup is the same for every
    budget: so warmup here is ``warmup_frac`` of the *smallest* budget, for the trunk and all branches.
    """
    spec = point[0]
    training = spec.training
    warmup = round(training.warmup_frac * min(budget_steps))
    cooldowns = [round(training.cooldown_frac * steps) for steps in budget_steps]
    starts = sorted({steps - cooldown for steps, cooldown in zip(budget_steps, cooldowns, strict=True)})
    if starts[0] < warmup:
        raise PlanError(
            f"training.branches: the smallest budget's cooldown ({cooldowns[budget_steps.index(min(budget_steps))]} "
            f"steps) starts inside its warmup ({warmup} steps); lower training.cooldown_frac or warmup_frac"
        )
    out: list[PlannedTrial] = []
    for seed in spec.seeds:
        trunk = _resolve(
            *point,
            starts[-1],
            seed,
            compute,
            lr=lr,
            role="trunk",
            warmup=warmup,
            cooldown=0,
            branch_starts=starts,
        )
        out.append(trunk)
        all_starts = [steps - cooldown for steps, cooldown in zip(budget_steps, cooldowns, strict=True)]
        for steps, cooldown in zip(budget_steps, cooldowns, strict=True):
            # The only branch from its checkpoint deletes it once done (a trunk keeps one per budget).
            alone = all_starts.count(steps - cooldown) == 1
            branch = BranchPart(
                parent=trunk.id, start_step=steps - cooldown, release_checkpoint=alone or None
            )
            out.append(
                _resolve(
                    *point,
                    steps,
                    seed,
                    compute,
                    lr=lr,
                    role="branch",
                    warmup=warmup,
                    cooldown=cooldown,
                    branch=branch,
                )
            )
    return out


def flops_saved(trials: list[PlannedTrial]) -> dict[str, float] | None:
    """Cooldown branches against independent runs: ``{independent, branched, saved, ratio}`` FLOPs.

    Independent runs would train every branch's budget from scratch; branching costs the trunks plus
    each branch's cooldown steps. None when the sweep has no branches.
    """
    branches = [t for t in trials if t.role == "branch"]
    if not branches:
        return None
    independent = sum(t.flops_exact for t in branches)
    cooldown = sum(t.flops_to_run for t in branches)
    branched = sum(t.flops_exact for t in trials if t.role == "trunk") + cooldown
    return {
        "independent": independent,
        "branched": branched,
        "saved": independent - branched,
        "ratio": independent / branched if branched else float("inf"),
    }


def _resolve(
    spec: SweepSpec,
    arch: Any,
    acc: dict,
    size: float,
    steps: int,
    seed: int,
    compute: float | None,
    *,
    lr: float | str | None = None,
    role: str = "main",
    beta2: float | None = None,
    warmup: int | None = None,
    cooldown: int | None = None,
    branch: BranchPart | None = None,
    branch_starts: list[int] | None = None,
) -> PlannedTrial:
    """One trial. ``lr``: a value, ``TUNED`` (hash the tuning spec instead of the value, chosen later),
    or None (the spec's lr). Non-main roles are written in the config, so a main trial's id is
    unchanged by roles."""
    training = spec.training
    nominal = resolve_lr(spec, acc["non_embedding_params"])
    if warmup is None:
        warmup = round(training.warmup_frac * steps)
    if cooldown is None:
        cooldown = round(training.cooldown_frac * steps) if training.schedule == "wsd" else 0
    return planned_trial(
        spec,
        arch=arch,
        accounting=acc,
        size_target=size,
        task=LadderPart(isoflop_budget=compute),
        training=training_part(
            spec,
            lr=nominal if lr is None else lr,
            sequences_per_step=training.batch_tokens // spec.data.seq_len,
            warmup_steps=warmup,
            cooldown_steps=cooldown,
            batch_in_tokens=True,
            beta2=beta2,
        ),
        seed=seed,
        steps=steps,
        tokens=steps * training.batch_tokens,
        nominal_lr=nominal,
        with_data=True,
        role=role,
        branch=branch,
        branch_starts=branch_starts,
    )


def estimated_seconds(trial: PlannedTrial, spec: SweepSpec) -> float:
    """Wall seconds of one trial on this machine, idle: ``orchestrator.cost_model`` (the model
    ``ceiling plan --cluster`` uses too) with the sweep's per-trial workers, CPU cores or GPUs."""
    from orchestrator import cost_model

    res = spec.resources
    devices = (res.gpus_per_worker or res.cpus_per_worker) * res.workers_per_trial
    machine = cost_model.local_machine(gpu=bool(res.gpus_per_worker))
    work = cost_model.trial_work(trial)
    return cost_model.trial_time(work, machine, devices, cost_model.ArchFactors()).seconds


def makespan_seconds(trials: list[PlannedTrial], spec: SweepSpec) -> float:
    """Longest-first greedy packing onto ``max_concurrent_trials`` slots."""
    from orchestrator.cost_model import makespan

    return makespan((estimated_seconds(t, spec) for t in trials), spec.resources.max_concurrent_trials)
