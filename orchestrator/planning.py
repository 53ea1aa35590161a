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

    @property
    def flops_exact(self) -> float:
        return float(self.accounting["flops_per_token"]) * self.tokens

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
            n = acc["non_embedding_params"]
            kind = "tokens" if spec.budgets.tokens is not None else "tokens_per_param"
            if compute is not None:
                budgets = [compute / (6 * n)]
            elif spec.budgets.tokens is not None:
                budgets = list(spec.budgets.tokens)
            else:
                budgets = [ratio * n for ratio in spec.budgets.tokens_per_param]
            for budget_index, wanted_tokens in enumerate(budgets):
                steps = max(1, round(wanted_tokens / tokens_per_step))
                if steps < MIN_STEPS:
                    where = "budgets.isoflop" if compute is not None else f"budgets.{kind}[{budget_index}]"
                    raise PlanError(
                        f"{where}: {wanted_tokens:.3g} tokens for {arch.display_name} at size {size:.3g} is "
                        f"{wanted_tokens / tokens_per_step:.2g} steps of training.batch_tokens={tokens_per_step}; "
                        f"need at least {MIN_STEPS} steps: raise the budget or lower training.batch_tokens"
                    )
                for seed in spec.seeds:
                    trials.append(
                        _resolve(
                            spec,
                            arch.name,
                            arch.display_name,
                            arch.overrides,
                            size,
                            acc,
                            steps,
                            seed,
                            compute,
                        )
                    )
    return trials


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
) -> PlannedTrial:
    training = spec.training
    lr = resolve_lr(spec, acc["non_embedding_params"])
    tokens = steps * training.batch_tokens
    warmup = round(training.warmup_frac * steps)
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
    return PlannedTrial(
        id=trial_id(config),
        arch=arch,
        label=label,
        size_target=size,
        seed=seed,
        tokens=tokens,
        steps=steps,
        lr=lr,
        accounting=acc,
        config=config,
    )


def estimated_seconds(trial: PlannedTrial, spec: SweepSpec) -> float:
    """A rough wall-time estimate: exact FLOPs over an assumed effective throughput."""
    res = spec.resources
    rate = (
        GPU_FLOPS_PER_DEVICE * res.gpus_per_worker
        if res.gpus_per_worker
        else CPU_FLOPS_PER_CORE * res.cpus_per_worker
    ) * res.workers_per_trial
    return trial.flops_exact / rate + 3.0  # + start-up


def makespan_seconds(trials: list[PlannedTrial], spec: SweepSpec) -> float:
    """Longest-first greedy packing onto ``max_concurrent_trials`` slots."""
    slots = [0.0] * spec.resources.max_concurrent_trials
    for seconds in sorted((estimated_seconds(t, spec) for t in trials), reverse=True):
        slots[slots.index(min(slots))] += seconds
    return max(slots) if slots else 0.0
