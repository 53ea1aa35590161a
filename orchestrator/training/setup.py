"""Setting one trial up to train: model, optimizer, schedule, DeepSpeed engine, checkpoints, its task.

``setup_trial`` returns a :class:`TrialRun`, the live state the step loop (``orchestrator.training.loop``)
advances: a fresh trial starts at step 0, an interrupted one at its newest checkpoint, a cooldown
branch's first attempt at its trunk's checkpoint of the branch step.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from orchestrator.data.prepare import PreparedData
from orchestrator.training.checkpoints import CheckpointStore
from orchestrator.training.distributed import deepspeed_config
from orchestrator.training.payload import TrialPayload
from orchestrator.training.schedule import lr_multiplier
from orchestrator.training.task import TrainingTask
from orchestrator.trial import TrialConfig


@dataclass
class TrialRun:
    """One attempt of one trial on one rank, from set-up to its final record."""

    payload: TrialPayload
    config: TrialConfig
    rank: int
    world: int
    device: torch.device
    reporter: Any  # a TrialReporter on rank 0, else None
    started: float  # time.time() when the attempt began
    engine: Any
    schedule: Any  # the LambdaLR DeepSpeed steps
    checkpoints: CheckpointStore
    task: TrainingTask
    micro: int  # sequences per micro batch
    grad_accum: int
    flops_per_token: float
    step: int  # optimizer steps done
    resumed_from: int  # the step this attempt started at
    nodes: list[str]
    branch_starts: set[int]  # steps where a trunk keeps a checkpoint for its branches
    train_loss: float = math.nan
    eval_values: dict[str, float] = field(default_factory=dict)
    startup_latency_s: float | None = None

    def evaluate(self, at_step: int, final: bool = False) -> dict[str, float]:
        """The task's evaluation (or its final one), stored as evals at ``at_step`` by rank 0."""
        evaluate = self.task.final_evaluate if final else self.task.evaluate
        values = evaluate(
            self.engine, rank=self.rank, world=self.world, batch_size=max(1, self.micro), device=self.device
        )
        if self.reporter and values:
            tokens = self.task.tokens_seen(at_step)
            self.reporter.evals(at_step, tokens, tokens * self.flops_per_token, values)
        return values


def _param_groups(model: torch.nn.Module, weight_decay: float, lr: float) -> list[dict[str, Any]]:
    # Decay matrices only: norms' gains and biases are not weights to shrink (GPT-3, Llama practice).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and "norm" not in name else no_decay).append(param)
    # Each group carries the peak lr so a model can cap its own (S4D's SSM parameters: min(1e-3, lr)).
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr},
    ]
    extra = getattr(model, "optimizer_param_overrides", None)  # e.g. S4D's own SSM learning rate
    if callable(extra):
        groups = extra(groups)
    return [g for g in groups if g["params"]]


def _node_ids(world: int) -> list[str]:
    """The Ray node of every rank (rank order), to show where a trial ran."""
    try:
        import ray

        mine = ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # not inside Ray (benchmarks, direct calls)
        mine = "local"
    if world == 1:
        return [mine]
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, mine)
    return gathered


def branch_point_store(payload: TrialPayload, trunk_id: str, step: int) -> CheckpointStore:
    """Where a trunk's checkpoint at ``step`` lives: its own folder, apart from the rolling ones."""
    return CheckpointStore(payload.checkpoint_root, f"{trunk_id}-at{step}", Path(payload.workdir))


def start_branch(engine: Any, schedule: Any, config: TrialConfig, payload: TrialPayload) -> int:
    """Load the trunk's model, optimizer and schedule state at the branch's start step; returns it.

    The data position is the step itself (batches are a function of the step). The trunk's learning
    rate at that step is its constant peak; the branch's own schedule (its cooldown) takes over here,
    so the update about to happen uses exactly the rate an independent run of this budget would.
    """
    start, trunk_id = int(config.branch.start_step), config.branch.parent
    if start == 0:
        return 0
    source = branch_point_store(payload, trunk_id, start)
    if not source.restore():
        raise RuntimeError(
            f"branch {payload.trial_id}: trunk {trunk_id} has no checkpoint at step {start} under "
            f"{payload.checkpoint_root}; run the trunk first (`ceiling resume` reruns it)"
        )
    _, client_state = engine.load_checkpoint(str(source.local_dir))
    loaded = int((client_state or {}).get("step", -1))
    if loaded != start:
        raise RuntimeError(
            f"branch {payload.trial_id}: trunk checkpoint is at step {loaded}, expected {start}"
        )
    multiplier = schedule.lr_lambdas[0]
    for group, base_lr in zip(schedule.optimizer.param_groups, schedule.base_lrs, strict=True):
        group["lr"] = base_lr * multiplier(start)
    schedule._last_lr = [group["lr"] for group in schedule.optimizer.param_groups]
    return start


def _engine(config: TrialConfig, *, micro: int, grad_accum: int, world: int) -> tuple[Any, Any, Any]:
    """(model, engine, schedule): the model built from the seed, wrapped by DeepSpeed."""
    import deepspeed

    import models

    training, ds = config.training, config.deepspeed
    torch.manual_seed(config.seed)
    model = models.from_config(config.model.arch, config.model.shape.thaw())
    optimizer = torch.optim.AdamW(
        _param_groups(model, training.weight_decay, training.lr),
        lr=training.lr,
        betas=(training.beta1, training.beta2),
        eps=1e-8,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_multiplier(
            training.schedule,
            total_steps=config.steps,
            warmup_steps=training.warmup_steps,
            cooldown_steps=training.cooldown_steps,
            min_lr_ratio=training.min_lr_ratio,
        ),
    )
    ds_config = deepspeed_config(
        micro_batch_size=micro,
        grad_accum=grad_accum,
        world=world,
        precision=training.precision,
        grad_clip=training.grad_clip,
        zero_stage=ds.zero_stage,
        overrides=ds.overrides.thaw(),
        preset=ds.preset,
    )
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=ds_config, dist_init_required=False
    )
    return model, engine, schedule


def setup_trial(
    payload: TrialPayload,
    config: TrialConfig,
    make_task: Callable[[TrialConfig, PreparedData], TrainingTask],
    *,
    rank: int,
    world: int,
    device: torch.device,
    reporter: Any,
    started: float,
) -> TrialRun:
    """Build everything, restore where the trial left off, and take the step-0 evaluation of a fresh one."""
    micro = payload.micro_batch_size
    grad_accum = config.training.sequences_per_step // world // micro
    model, engine, schedule = _engine(config, micro=micro, grad_accum=grad_accum, world=world)

    checkpoints = CheckpointStore(payload.checkpoint_root, payload.trial_id, Path(payload.workdir))
    checkpoints.check_writable()
    step = 0
    if checkpoints.restore():
        _, client_state = engine.load_checkpoint(str(checkpoints.local_dir))
        step = int((client_state or {}).get("step", 0))
    elif config.branch is not None:
        # A cooldown branch's first attempt starts from its trunk's checkpoint at the branch step.
        step = start_branch(engine, schedule, config, payload)
    nodes = _node_ids(world)

    # What the trial trains on and how it is scored: its kind's task (orchestrator/kinds).
    task = make_task(config, PreparedData.from_dict(payload.data))
    run = TrialRun(
        payload=payload,
        config=config,
        rank=rank,
        world=world,
        device=device,
        reporter=reporter,
        started=started,
        engine=engine,
        schedule=schedule,
        checkpoints=checkpoints,
        task=task,
        micro=micro,
        grad_accum=grad_accum,
        flops_per_token=float(model.flops_per_token(task.flops_seq_len)),
        step=step,
        resumed_from=step,
        nodes=nodes,
        branch_starts=set(config.branch_starts or ()),
    )
    if reporter:
        reporter.heartbeat(force=True, worker=f"{socket.gethostname()}:{os.getpid()}", steps_done=step)
    if step == 0:
        run.evaluate(0)
    return run
