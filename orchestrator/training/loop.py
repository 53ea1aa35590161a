"""The training loop of one trial, run identically by every worker of its data-parallel group.

DeepSpeed owns the optimizer step (ZeRO stage, bf16 master weights, gradient clipping, accumulation);
we own the data order, the schedule, evaluation, checkpoints and reporting. A trial resumes from its
newest checkpoint, and because batches are a function of the step alone, a resumed trial sees exactly
the data an uninterrupted one would. ``train_trial`` = ``setup_trial`` (orchestrator/training/setup.py),
``run_steps``, ``finish_trial``.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from orchestrator.data.prepare import PreparedData
from orchestrator.training.checkpoints import CheckpointError
from orchestrator.training.payload import TrialPayload
from orchestrator.training.setup import TrialRun, _param_groups, branch_point_store, setup_trial
from orchestrator.training.task import TrainingTask
from orchestrator.trial import TrialConfig

__all__ = ["TrialDiverged", "TrialPayload", "_param_groups", "finish_trial", "run_steps", "train_trial"]


class TrialDiverged(RuntimeError):
    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged at step {step}: loss {loss}")
        self.step, self.loss = step, loss


def train_trial(
    payload: TrialPayload,
    *,
    rank: int,
    world: int,
    make_task: Callable[[TrialConfig, PreparedData], TrainingTask],
) -> dict[str, Any]:
    """Run (or resume) one trial to completion; returns its final record. Rank 0 reports.

    ``make_task``: its kind of study's task (``orchestrator.kinds.kind_of(config).make_task``).
    """
    config = TrialConfig.from_dict(payload.config)
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
    run = None
    try:
        run = setup_trial(
            payload,
            config,
            make_task,
            rank=rank,
            world=world,
            device=device,
            reporter=reporter,
            started=time.time(),
        )
        run_steps(run)
        return finish_trial(run)
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
        run = None  # drop the engine (and its optimizer state) before the next trial
        gc.collect()


def _train_step(run: TrialRun) -> float:
    """One optimizer step over this worker's micro batches; its mean loss, agreed by every rank."""
    step_loss = 0.0
    for inputs_BT, targets_BT in run.task.micro_batches(run.step, run.rank, run.world, run.micro):
        inputs_BT, targets_BT = inputs_BT.to(run.device), targets_BT.to(run.device)
        logits_BTV = run.engine(inputs_BT)
        # targets are -100 (IGNORE_INDEX) where nothing is scored, e.g. all but MQAR's answers
        loss = F.cross_entropy(logits_BTV.float().flatten(0, 1), targets_BT.flatten(), ignore_index=-100)
        run.engine.backward(loss)
        run.engine.step()
        step_loss += loss.item() / run.grad_accum
    if run.world > 1:  # every rank must agree on the loss, or one stops for divergence and the rest hang
        shared = torch.tensor([step_loss], dtype=torch.float64)
        torch.distributed.all_reduce(shared)
        step_loss = shared.item() / run.world
    return step_loss


def _save_checkpoints(run: TrialRun) -> None:
    """A trunk's branch-point checkpoint at a branch start; the rolling one every checkpoint_interval."""
    step, steps_total = run.step, run.config.steps
    if step in run.branch_starts:
        branch_point = branch_point_store(run.payload, run.payload.trial_id, step)
        branch_point.check_writable()
        run.engine.save_checkpoint(
            str(branch_point.local_dir), tag=f"step{step}", client_state={"step": step}
        )
        branch_point.saved(f"step{step}", is_writer=run.rank == 0)
    if step % run.config.training.checkpoint_interval == 0 and step < steps_total:
        tag = f"step{step}"
        checkpoints = run.checkpoints
        try:
            run.engine.save_checkpoint(str(checkpoints.local_dir), tag=tag, client_state={"step": step})
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoint {tag} to {checkpoints.local_dir}: {exc}"
            ) from None
        checkpoints.saved(tag, is_writer=run.rank == 0)


def run_steps(run: TrialRun) -> None:
    """Train from ``run.step`` to the last step: log, evaluate and checkpoint on their intervals."""
    training, steps_total, task = run.config.training, run.config.steps, run.task
    interval_loss, interval_steps, last_log_time, last_log_step = 0.0, 0, time.time(), run.step
    while run.step < steps_total:
        step_loss = _train_step(run)
        run.step += 1
        step = run.step
        if run.startup_latency_s is None:
            run.startup_latency_s = time.time() - (run.payload.scheduled_at or run.started)
        if not math.isfinite(step_loss) or (
            run.payload.max_loss is not None and step_loss > run.payload.max_loss
        ):
            raise TrialDiverged(step, step_loss)
        interval_loss += step_loss
        interval_steps += 1
        run.train_loss = step_loss
        if step % training.log_interval == 0 or step == steps_total:
            now = time.time()
            tokens_per_s = (task.tokens_seen(step) - task.tokens_seen(last_log_step)) / max(
                now - last_log_time, 1e-9
            )
            if run.reporter:
                mean_loss = interval_loss / interval_steps
                run.reporter.metrics(
                    step,
                    {
                        "train_loss": mean_loss,
                        "lr": run.schedule.get_last_lr()[0],
                        "tokens_per_s": tokens_per_s,
                    },
                )
                run.reporter.heartbeat(
                    steps_done=step,
                    tokens_seen=task.tokens_seen(step),
                    last_train_loss=mean_loss,
                    tokens_per_s=tokens_per_s,
                )
            interval_loss, interval_steps, last_log_time, last_log_step = 0.0, 0, now, step
        if step % training.eval_interval == 0 or step == steps_total:
            run.eval_values = run.evaluate(step)
        _save_checkpoints(run)


def finish_trial(run: TrialRun) -> dict[str, Any]:
    """The final evaluation and record; rank 0 stores it and drops the checkpoints a done trial no longer needs."""
    # Measured once, at the end (an LM trial's in-context copy score); stored as evals and final metrics.
    eval_values = {**run.eval_values, **run.evaluate(run.step, final=True)}
    final = {
        "steps_done": run.step,
        "tokens_seen": run.task.tokens_seen(run.step),
        "final_train_loss": run.train_loss,
        "final_val_loss": eval_values.get("val_loss"),
        "final_val_bpb": eval_values.get("val_bpb"),
        "final_metrics": {
            **eval_values,
            "startup_latency_s": run.startup_latency_s,
            "resumed_from_step": run.resumed_from,
            "train_wall_s": time.time() - run.started,
            "nodes": run.nodes,
        },
        "wall_time_s": time.time() - run.started,
        "last_train_loss": run.train_loss,
    }
    if run.reporter:
        # A kind's own results beyond metrics (the efficiency study's measurements), stored before
        # the final record so that a done trial has them.
        record_results = getattr(run.task, "record_results", None)
        if record_results is not None:
            record_results(run.reporter)
        run.reporter.finish(**final)
        run.checkpoints.clear()  # done is final: the checkpoint is no longer needed
        branch = run.config.branch
        if branch is not None and branch.release_checkpoint and branch.start_step > 0:
            branch_point_store(run.payload, branch.parent, branch.start_step).clear()
    return {"status": "done", **final}
