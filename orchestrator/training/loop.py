"""The training loop of one trial, run identically by every worker of its data-parallel group.

DeepSpeed owns the optimizer step (ZeRO stage, bf16 master weights, gradient clipping, accumulation);
we own the data order, the schedule, evaluation, checkpoints and reporting. A trial resumes from its
newest checkpoint, and because batches are a function of the step alone, a resumed trial sees exactly
the data an uninterrupted one would.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from orchestrator.data.prepare import PreparedData
from orchestrator.recall.tasks import make_task
from orchestrator.training.checkpoints import CheckpointError, CheckpointStore
from orchestrator.training.distributed import deepspeed_config
from orchestrator.training.schedule import lr_multiplier


class TrialDiverged(RuntimeError):
    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged at step {step}: loss {loss}")
        self.step, self.loss = step, loss


@dataclass(frozen=True)
class TrialPayload:
    """Everything a worker needs to run one attempt of one trial (plain data: it crosses Ray)."""

    trial_id: str
    attempt: int
    config: dict[str, Any]
    data: dict[str, Any]
    store_url: str
    checkpoint_root: str  # a folder or a pyarrow.fs URI; the trial's checkpoints go under <root>/<trial id>
    workdir: str  # local scratch (the cache of checkpoints mirrored from remote storage)
    micro_batch_size: int
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    use_cuda: bool = False
    max_loss: float | None = None  # a finite loss above this counts as divergence
    scheduled_at: float | None = None  # driver's clock when the trial was handed out (start-up latency)


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


def start_branch(engine: Any, schedule: Any, config: dict[str, Any], payload: TrialPayload) -> int:
    """Load the trunk's model, optimizer and schedule state at the branch's start step; returns it.

    The data position is the step itself (batches are a function of the step). The trunk's learning
    rate at that step is its constant peak; the branch's own schedule (its cooldown) takes over here,
    so the update about to happen uses exactly the rate an independent run of this budget would.
    """
    start, trunk_id = int(config["branch"]["start_step"]), config["branch"]["parent"]
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
        raise RuntimeError(f"branch {payload.trial_id}: trunk checkpoint is at step {loaded}, expected {start}")
    multiplier = schedule.lr_lambdas[0]
    for group, base_lr in zip(schedule.optimizer.param_groups, schedule.base_lrs, strict=True):
        group["lr"] = base_lr * multiplier(start)
    schedule._last_lr = [group["lr"] for group in schedule.optimizer.param_groups]
    return start


def train_trial(payload: TrialPayload, *, rank: int, world: int) -> dict[str, Any]:
    """Run (or resume) one trial to completion; returns its final record. Rank 0 reports."""
    import deepspeed

    import models

    config, training = payload.config, payload.config["training"]
    data = PreparedData.from_dict(payload.data)
    device = torch.device("cuda", torch.cuda.current_device()) if payload.use_cuda else torch.device("cpu")
    reporter = None
    if rank == 0:
        from orchestrator.training.reporter import TrialReporter

        reporter = TrialReporter(
            store_url=payload.store_url,
            trial_id=payload.trial_id,
            attempt=payload.attempt,
            tracking_uri=payload.tracking_uri,
            mlflow_run_id=payload.mlflow_run_id,
        )
    started = time.time()
    engine = None
    try:
        torch.manual_seed(config["seed"])
        model = models.from_config(config["arch"], config["model"])
        steps_total = config["steps"]
        sequences_per_step = training["sequences_per_step"]
        per_worker = sequences_per_step // world
        micro = payload.micro_batch_size
        grad_accum = per_worker // micro
        optimizer = torch.optim.AdamW(
            _param_groups(model, training["weight_decay"], training["lr"]),
            lr=training["lr"],
            betas=(training["beta1"], training["beta2"]),
            eps=1e-8,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lr_multiplier(
                training["schedule"],
                total_steps=steps_total,
                warmup_steps=training["warmup_steps"],
                cooldown_steps=training["cooldown_steps"],
                min_lr_ratio=training["min_lr_ratio"],
            ),
        )
        ds = config["deepspeed"]
        ds_config = deepspeed_config(
            micro_batch_size=micro,
            grad_accum=grad_accum,
            world=world,
            precision=training["precision"],
            grad_clip=training["grad_clip"],
            zero_stage=ds["zero_stage"],
            overrides=ds["overrides"],
            preset=ds.get("preset"),
        )
        engine, _, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=schedule,
            config=ds_config,
            dist_init_required=False,
        )

        checkpoints = CheckpointStore(payload.checkpoint_root, payload.trial_id, Path(payload.workdir))
        checkpoints.check_writable()
        step = 0
        if checkpoints.restore():
            _, client_state = engine.load_checkpoint(str(checkpoints.local_dir))
            step = int((client_state or {}).get("step", 0))
        elif config.get("branch"):
            # A cooldown branch's first attempt starts from its trunk's checkpoint at the branch step.
            step = start_branch(engine, schedule, config, payload)
        resumed_from = step
        # A trunk keeps a checkpoint at every step a branch starts from (kept after the trunk is done).
        branch_starts = set(config.get("branch_starts", []))
        nodes = _node_ids(world)

        # What the trial trains on and how it is scored: corpus windows (LmTask) or a synthetic recall
        # task (RecallTask, when the config carries `task`); see orchestrator/recall/tasks.py.
        task = make_task(config, data)
        flops_per_token = float(model.flops_per_token(task.flops_seq_len))
        eval_batch = max(1, micro)

        def run_eval(at_step: int, final: bool = False) -> dict[str, float]:
            evaluate = task.final_evaluate if final else task.evaluate
            values = evaluate(engine, rank=rank, world=world, batch_size=eval_batch, device=device)
            if reporter and values:
                tokens = task.tokens_seen(at_step)
                reporter.evals(at_step, tokens, tokens * flops_per_token, values)
            return values

        if reporter:
            reporter.heartbeat(force=True, worker=f"{socket.gethostname()}:{os.getpid()}", steps_done=step)
        if step == 0:
            run_eval(0)
        interval_loss, interval_steps, last_log_time, last_log_step = 0.0, 0, time.time(), step
        startup_latency_s = None
        train_loss = float("nan")
        eval_values: dict[str, float] = {}
        while step < steps_total:
            step_loss = 0.0
            for inputs_BT, targets_BT in task.micro_batches(step, rank, world, micro):
                inputs_BT, targets_BT = inputs_BT.to(device), targets_BT.to(device)
                logits_BTV = engine(inputs_BT)
                # targets are -100 (IGNORE_INDEX) where nothing is scored, e.g. all but MQAR's answers
                loss = F.cross_entropy(logits_BTV.float().flatten(0, 1), targets_BT.flatten(), ignore_index=-100)
                engine.backward(loss)
                engine.step()
                step_loss += loss.item() / grad_accum
            step += 1
            if startup_latency_s is None:
                startup_latency_s = time.time() - (payload.scheduled_at or started)
            if world > 1:  # every rank must agree on the loss, or one stops for divergence and the rest hang
                shared = torch.tensor([step_loss], dtype=torch.float64)
                torch.distributed.all_reduce(shared)
                step_loss = shared.item() / world
            if not math.isfinite(step_loss) or (
                payload.max_loss is not None and step_loss > payload.max_loss
            ):
                raise TrialDiverged(step, step_loss)
            interval_loss += step_loss
            interval_steps += 1
            train_loss = step_loss
            if step % training["log_interval"] == 0 or step == steps_total:
                now = time.time()
                tokens_per_s = (task.tokens_seen(step) - task.tokens_seen(last_log_step)) / max(
                    now - last_log_time, 1e-9
                )
                if reporter:
                    reporter.metrics(
                        step,
                        {
                            "train_loss": interval_loss / interval_steps,
                            "lr": schedule.get_last_lr()[0],
                            "tokens_per_s": tokens_per_s,
                        },
                    )
                    reporter.heartbeat(
                        steps_done=step,
                        tokens_seen=task.tokens_seen(step),
                        last_train_loss=interval_loss / interval_steps,
                        tokens_per_s=tokens_per_s,
                    )
                interval_loss, interval_steps, last_log_time, last_log_step = 0.0, 0, now, step
            if step % training["eval_interval"] == 0 or step == steps_total:
                eval_values = run_eval(step)
            if step in branch_starts:
                branch_point = branch_point_store(payload, payload.trial_id, step)
                branch_point.check_writable()
                engine.save_checkpoint(str(branch_point.local_dir), tag=f"step{step}", client_state={"step": step})
                branch_point.saved(f"step{step}", is_writer=rank == 0)
            if step % training["checkpoint_interval"] == 0 and step < steps_total:
                tag = f"step{step}"
                try:
                    engine.save_checkpoint(str(checkpoints.local_dir), tag=tag, client_state={"step": step})
                except OSError as exc:
                    raise CheckpointError(f"cannot write checkpoint {tag} to {checkpoints.local_dir}: {exc}") from None
                checkpoints.saved(tag, is_writer=rank == 0)

        # Measured once, at the end (an LM trial's in-context copy score); stored as evals and final metrics.
        eval_values = {**eval_values, **run_eval(step, final=True)}
        final = {
            "steps_done": step,
            "tokens_seen": task.tokens_seen(step),
            "final_train_loss": train_loss,
            "final_val_loss": eval_values.get("val_loss"),
            "final_val_bpb": eval_values.get("val_bpb"),
            "final_metrics": {
                **eval_values,
                "startup_latency_s": startup_latency_s,
                "resumed_from_step": resumed_from,
                "train_wall_s": time.time() - started,
                "nodes": nodes,
            },
            "wall_time_s": time.time() - started,
            "last_train_loss": train_loss,
        }
        if reporter:
            reporter.finish(**final)
            checkpoints.clear()  # done is final: the checkpoint is no longer needed
            branch = config.get("branch") or {}
            if branch.get("release_checkpoint") and branch["start_step"] > 0:
                branch_point_store(payload, branch["parent"], branch["start_step"]).clear()
        return {"status": "done", **final}
    except TrialDiverged as exc:
        if reporter:
            reporter.fail(str(exc), status="diverged", diverged_step=exc.step)
        return {"status": "diverged", "error": str(exc), "diverged_step": exc.step}
    except CheckpointError as exc:
        # Retrying cannot help a full disk or an unwritable folder: fail now, say where and why.
        if reporter:
            reporter.fail(str(exc))
        return {"status": "failed", "error": str(exc)}
    except Exception:
        # Let the orchestrator decide between retry and failure; it needs the traceback either way.
        raise RuntimeError(
            f"trial {payload.trial_id} attempt {payload.attempt} failed:\n{traceback.format_exc()}"
        ) from None
    finally:
        if reporter:
            reporter.close()
        engine = None  # drop the engine (and its optimizer state) before the next trial
        gc.collect()
