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
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from orchestrator.data.batches import TrainBatches, validation_windows
from orchestrator.data.prepare import PreparedData
from orchestrator.training.distributed import deepspeed_config
from orchestrator.training.evaluation import evaluate
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
    checkpoint_dir: str
    micro_batch_size: int
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    use_cuda: bool = False
    max_loss: float | None = None  # a finite loss above this counts as divergence
    scheduled_at: float | None = None  # driver's clock when the trial was handed out (start-up latency)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # Decay matrices only: norms' gains and biases are not weights to shrink (GPT-3, Llama practice).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and "norm" not in name else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = getattr(model, "optimizer_param_overrides", None)  # e.g. S4D's own SSM learning rate
    if callable(extra):
        groups = extra(groups)
    return [g for g in groups if g["params"]]


def _latest_checkpoint(directory: Path) -> bool:
    return (directory / "latest").is_file()


def _prune_checkpoints(directory: Path, keep_tag: str) -> None:
    for child in directory.iterdir():
        if child.is_dir() and child.name.startswith("step") and child.name != keep_tag:
            shutil.rmtree(child, ignore_errors=True)


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
            _param_groups(model, training["weight_decay"]),
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
            overrides=ds.get("resolved_overrides") or ds["overrides"],
        )
        engine, _, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=schedule,
            config=ds_config,
            dist_init_required=False,
        )

        checkpoint_dir = Path(payload.checkpoint_dir)
        step = 0
        if _latest_checkpoint(checkpoint_dir):
            _, client_state = engine.load_checkpoint(str(checkpoint_dir))
            step = int((client_state or {}).get("step", 0))
        resumed_from = step

        seq_len = config["data"]["seq_len"]
        tokens_per_step = sequences_per_step * seq_len
        flops_per_token = float(model.flops_per_token(seq_len))
        batches = TrainBatches(data.open("train"), seq_len, sequences_per_step, seed=config["seed"])
        windows = validation_windows(data.open("val"), seq_len, config["data"]["val_tokens"])
        eval_batch = max(1, micro)

        def run_eval(at_step: int) -> dict[str, float]:
            values = evaluate(
                engine,
                windows,
                rank=rank,
                world=world,
                batch_size=eval_batch,
                bytes_per_token=data.val_bytes_per_token,
                device=device,
                autocast_dtype=None,
            )
            if reporter:
                reporter.evals(
                    at_step, at_step * tokens_per_step, at_step * tokens_per_step * flops_per_token, values
                )
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
            for inputs_BT, targets_BT in batches.micro_batches(step, rank, world, micro):
                inputs_BT, targets_BT = inputs_BT.to(device), targets_BT.to(device)
                logits_BTV = engine(inputs_BT)
                loss = F.cross_entropy(logits_BTV.float().flatten(0, 1), targets_BT.flatten())
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
                tokens_per_s = (step - last_log_step) * tokens_per_step / max(now - last_log_time, 1e-9)
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
                        tokens_seen=step * tokens_per_step,
                        last_train_loss=interval_loss / interval_steps,
                        tokens_per_s=tokens_per_s,
                    )
                interval_loss, interval_steps, last_log_time, last_log_step = 0.0, 0, now, step
            if step % training["eval_interval"] == 0 or step == steps_total:
                eval_values = run_eval(step)
            if step % training["checkpoint_interval"] == 0 and step < steps_total:
                tag = f"step{step}"
                engine.save_checkpoint(str(checkpoint_dir), tag=tag, client_state={"step": step})
                if rank == 0:
                    _prune_checkpoints(checkpoint_dir, tag)

        final = {
            "steps_done": step,
            "tokens_seen": step * tokens_per_step,
            "final_train_loss": train_loss,
            "final_val_loss": eval_values.get("val_loss"),
            "final_val_bpb": eval_values.get("val_bpb"),
            "final_metrics": {
                **eval_values,
                "startup_latency_s": startup_latency_s,
                "resumed_from_step": resumed_from,
                "train_wall_s": time.time() - started,
            },
            "wall_time_s": time.time() - started,
            "last_train_loss": train_loss,
        }
        if reporter:
            reporter.finish(**final)
            shutil.rmtree(
                checkpoint_dir, ignore_errors=True
            )  # done is final: the checkpoint is no longer needed
        return {"status": "done", **final}
    except TrialDiverged as exc:
        if reporter:
            reporter.fail(str(exc), status="diverged", diverged_step=exc.step)
        return {"status": "diverged", "error": str(exc), "diverged_step": exc.step}
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
