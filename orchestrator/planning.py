"""Expanding a sweep spec into trials: architecture x size x token budget x seed.

Each trial carries its fully resolved configuration (model shape, tokens, steps, learning rate, data,
schedule, DeepSpeed settings); its id is a hash of that configuration, so the same trial submitted
twice (even from another sweep) is stored, and run, once. How a trial is *executed* (workers, micro
batch) is kept out of the hash: it must not change the result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.spec import SweepSpec

# Rough effective throughputs for `ceiling plan`'s time estimate (small models are far from peak).
CPU_FLOPS_PER_CORE = 3e9
GPU_FLOPS_PER_DEVICE = 1e14
MIN_STEPS = 4


TUNED = "tuned"  # a trial's lr placeholder until its tuning choice is known (see orchestrator/tuning.py)


class PlanError(ValueError):
    """A spec that validates but cannot be turned into trials (e.g. a budget below one batch)."""


@dataclass(frozen=True)
class PlannedTrial:
    id: str
    arch: str
    label: str
    size_target: float
    seed: int
    tokens: int
    steps: int
    lr: float
    accounting: dict[str, Any]
    config: dict[str, Any] = field(repr=False)
    role: str = "main"  # main | trunk | branch | tuning (see orchestrator/store/schema.py)
    parent_id: str | None = None  # a branch's trunk

    @property
    def tuned(self) -> bool:
        """Whether the lr comes from tuning (chosen when the trial starts; ``lr`` is the spec's nominal one)."""
        return self.config["training"]["lr"] == TUNED

    @property
    def flops_exact(self) -> float:
        return float(self.accounting["flops_per_token"]) * self.tokens

    @property
    def flops_to_run(self) -> float:
        """FLOPs this trial itself spends: a branch runs only its cooldown (the trunk ran the prefix)."""
        branch = self.config.get("branch")
        if not branch:
            return self.flops_exact
        return self.flops_exact * (self.steps - branch["start_step"]) / self.steps

    @property
    def flops_6nd(self) -> float:
        return 6.0 * self.accounting["non_embedding_params"] * self.tokens

    def row(self) -> dict[str, Any]:
        """Column values for the store's ``trials`` table."""
        acc = self.accounting
        return {
            "id": self.id,
            "arch": self.arch,
            "label": self.label,
            "size_target": self.size_target,
            "params_total": acc["total_params"],
            "params_embedding": acc["embedding_params"],
            "params_non_embedding": acc["non_embedding_params"],
            "state_size": acc["state_size"],
            "seq_len": acc["seq_len"],
            "tokens": self.tokens,
            "steps_total": self.steps,
            "flops_6nd": self.flops_6nd,
            "flops_exact": self.flops_exact,
            "seed": self.seed,
            "lr": self.lr,
            "config": self.config,
            "role": self.role,
            "parent_id": self.parent_id,
        }


def trial_id(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


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


def plan_trials(spec: SweepSpec, vocab_size: int) -> list[PlannedTrial]:
    """All trials of a sweep, in a stable order (architecture, size, budget, seed).

    A recall study (``spec.task``) plans architecture x width x lr x seed instead, with the task's
    vocabulary (``vocab_size``, the corpus's, is then unused): see ``orchestrator.recall.planning``.
    """
    import models

    if spec.task is not None:
        from orchestrator.recall.planning import plan_recall_trials

        return plan_recall_trials(spec)
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
            point = (spec, arch.name, arch.display_name, arch.overrides, size, acc)
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
    spec, label, size = point[0], point[2], point[4]
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
            extra={"branch_starts": starts},
        )
        out.append(trunk)
        all_starts = [steps - cooldown for steps, cooldown in zip(budget_steps, cooldowns, strict=True)]
        for steps, cooldown in zip(budget_steps, cooldowns, strict=True):
            branch = {"parent": trunk.id, "start_step": steps - cooldown}
            if all_starts.count(steps - cooldown) == 1:
                # The only branch from this checkpoint deletes it once done (a trunk keeps one per budget).
                branch["release_checkpoint"] = True
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
                    extra={"branch": branch},
                    parent_id=trunk.id,
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
    arch: str,
    label: str,
    overrides: dict,
    size: float,
    acc: dict,
    steps: int,
    seed: int,
    compute: float | None,
    *,
    lr: float | str | None = None,
    role: str = "main",
    beta2: float | None = None,
    warmup: int | None = None,
    cooldown: int | None = None,
    extra: dict[str, Any] | None = None,
    parent_id: str | None = None,
) -> PlannedTrial:
    """One trial's resolved config. ``lr``: a value, ``TUNED`` (hash the tuning spec instead of the
    value, chosen later), or None (the spec's lr). Non-main roles put ``role`` in the config, so a main
    trial's id is unchanged by this feature."""
    training = spec.training
    nominal = resolve_lr(spec, acc["non_embedding_params"])
    lr = nominal if lr is None else lr
    tokens = steps * training.batch_tokens
    if warmup is None:
        warmup = round(training.warmup_frac * steps)
    if cooldown is None:
        cooldown = round(training.cooldown_frac * steps) if training.schedule == "wsd" else 0
    config = {
        "arch": arch,
        "label": label,
        "model": acc["config"],
        "overrides": overrides,
        "size_target": size,
        "isoflop_budget": compute,
        "seed": seed,
        "tokens": tokens,
        "steps": steps,
        "data": spec.data.model_dump(mode="json"),
        "training": {
            **training.model_dump(mode="json", exclude={"lr", "micro_batch_size", "max_loss"}),
            "lr": lr,
            "sequences_per_step": training.batch_tokens // spec.data.seq_len,
            "warmup_steps": warmup,
            "cooldown_steps": cooldown,
            "checkpoint_interval": training.checkpoint_interval or training.eval_interval,
        },
        "deepspeed": spec.deepspeed.model_dump(mode="json"),
    }
    # Only what changes the computation goes in: a branched trial's config says its schedule and start.
    config["training"].pop("branches", None)
    if beta2 is not None:
        config["training"]["beta2"] = beta2
    if lr == TUNED:
        config["tuning"] = spec.tuning.model_dump(mode="json")
    if role != "main":
        config["role"] = role
    config.update(extra or {})
    return PlannedTrial(
        id=trial_id(config),
        arch=arch,
        label=label,
        size_target=size,
        seed=seed,
        tokens=tokens,
        steps=steps,
        lr=nominal if lr == TUNED else float(lr),
        accounting=acc,
        config=config,
        role=role,
        parent_id=parent_id,
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
