"""The efficiency study's training task: the ladder's language-model task, plus measurements at the end.

Training and the periodic evaluations are the LM task's own (``LmTask``): the same data, the same
loss. At the end, rank 0 measures the trained model (``orchestrator.efficiency``): decode tokens/s and
state bytes after each context length and batch, prefill tokens/s by length, and validation loss at
multiples of the training length, by position bucket. Only law points are measured (main trials and
cooldown branches; a WSD trunk or a tuning run is not a model anyone would deploy).

The headline numbers join the final metrics (stored as evals, logged to MLflow, read by laws); every
number goes to the store's ``efficiency_measurements`` table through ``record_results``, which the
training loop calls on rank 0 before the final record, so a ``done`` trial has its measurements.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import torch

from orchestrator.training.lm_task import LmTask
from orchestrator.trial import TrialConfig

MEASURED_ROLES = ("main", "branch")  # law points (orchestrator.store.schema.LAW_ROLES)


class EfficiencyTask(LmTask):
    def __init__(self, config: TrialConfig, data: Any):
        super().__init__(config, data)
        self.part = config.task
        self.measured = config.role in MEASURED_ROLES
        self.zero_stage = config.deepspeed.zero_stage
        self.has_kv_cache = config.model.arch == "transformer"  # the analytic KV count applies
        self.model_part = config.model
        self.val_tokens = data.open("val")
        self.rows: list[dict[str, Any]] = []

    def final_evaluate(
        self, engine: Any, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        from orchestrator.store.efficiency import headline_metrics

        values = super().final_evaluate(engine, rank=rank, world=world, batch_size=batch_size, device=device)
        if not self.measured:
            return values
        with _whole_parameters(engine, self.zero_stage):
            if rank == 0:  # the others wait: measurements time one process, not a group
                self.rows = measure_model(
                    engine.module, self.part, self.seq_len, self.val_tokens, kv_cache=self.has_kv_cache
                )
        if rank == 0 and self.part.train_lengths:
            self.rows += training_speed_rows(self.model_part, engine.module, self.part)
        if rank == 0:
            values.update(headline_metrics(self.rows))
        return values

    def record_results(self, reporter: Any) -> None:
        """Rank 0, before the final record: every measurement to the store, and to MLflow as a table."""
        from orchestrator.store.efficiency import record_efficiency

        if not self.rows:
            return
        record_efficiency(reporter.store, reporter.trial_id, reporter.attempt, self.rows)
        reporter.log_text(json.dumps(self.rows, indent=1), "efficiency_measurements.json")


@contextlib.contextmanager
def _whole_parameters(engine: Any, zero_stage: int):
    """ZeRO-3 shards parameters across ranks; every rank joins the gather, rank 0 then holds them all."""
    if zero_stage != 3:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None):
        yield


ROUNDS = 2  # passes over every (batch, L); each number is the best pass's


def decode_clock(part: Any) -> Callable[[], float]:
    """The spec's `efficiency.clock`: wall time, or the measuring thread's CPU time (a trial computes
    on one thread with cpus_per_worker: 1, so its CPU seconds are its compute, whatever else runs)."""
    return time.thread_time if getattr(part, "clock", None) == "cpu" else time.perf_counter


def measure_model(
    model: Any, part: Any, train_len: int, val_tokens: Any, *, kv_cache: bool = False
) -> list[dict[str, Any]]:
    """Every measurement of one model as store rows ({measure, length, batch, position, metric, value}).

    Decode runs ROUNDS passes over the (batch, L) grid, the second in reverse order, and keeps each
    point's fastest pass (each pass the median of ``repeats``): a burst of load from another process
    then slows one pass of a point rather than one length's only reading, which would bend the curve
    against L that the study is about. ``kv_cache``: the model is a Transformer; its measured cache
    bytes get the analytic count beside them.
    """
    from orchestrator.efficiency import evaluate_extrapolation, kv_cache_bytes_analytic, measure_decode

    was_training = model.training
    model.eval()
    rows: list[dict[str, Any]] = []
    try:
        # Untimed: the first calls of a fresh model pay for allocation and dispatch caches, which
        # would otherwise read as a slow shortest context and flatter every ratio against it.
        measure_decode(model, context_len=min(part.contexts), decode_tokens=part.decode_tokens, repeats=1)
        grid = [
            (batch, length)
            for batch in part.batches
            for length in part.contexts
            # a larger batch only where its prefill stays affordable (spec: max_batch_tokens)
            if batch == 1 or batch * length <= part.max_batch_tokens
        ]
        best: dict[tuple[int, int], Any] = {}
        fastest_prefill: dict[tuple[int, int], float] = {}
        for round_index in range(ROUNDS):
            for batch, length in grid if round_index % 2 == 0 else reversed(grid):
                measured = measure_decode(
                    model, context_len=length, batch=batch, decode_tokens=part.decode_tokens,
                    repeats=part.repeats, clock=decode_clock(part),
                )  # fmt: skip
                key = (batch, length)
                if key not in best or measured.tokens_per_s > best[key].tokens_per_s:
                    best[key] = measured
                fastest_prefill[key] = min(fastest_prefill.get(key, measured.prefill_s), measured.prefill_s)
        for batch, length in grid:
            measured = best[(batch, length)]
            decode = {
                "tokens_per_s": measured.tokens_per_s,
                "state_bytes": measured.state_bytes,
                "prefill_s": fastest_prefill[(batch, length)],
            }
            if kv_cache:
                decode["kv_cache_bytes_analytic"] = kv_cache_bytes_analytic(model, length)
            rows += [_row("decode", length, batch, k, v) for k, v in decode.items()]
            if batch == 1 and not part.prefill:  # prefill throughput from the decode's own prefills
                rows.append(_row("prefill", length, 1, "tokens_per_s", length / decode["prefill_s"]))
        if part.prefill:
            from orchestrator.efficiency import measure_prefill

            speeds = measure_prefill(model, seq_lens=list(part.prefill), repeats=part.repeats)
            rows += [_row("prefill", length, 1, "tokens_per_s", speed) for length, speed in speeds.items()]
        rows += _extrapolation_rows(model, part, train_len, val_tokens, evaluate_extrapolation)
    finally:
        model.train(was_training)
    return rows


def training_speed_rows(model_part: Any, trained: Any, part: Any) -> list[dict[str, Any]]:
    """Training tokens/s (forward + backward of the loss, batch 1) at each of ``part.train_lengths``.

    Timed on a fresh model of the trial's shape and dtype, not on the engine's: its cost does not depend on
    the weights, and a backward pass through the engine's module would fire DeepSpeed's gradient hooks.
    """
    import models
    from orchestrator.efficiency import measure_prefill

    parameter = next(trained.parameters())
    model = models.from_config(model_part.arch, model_part.shape.thaw()).to(parameter.device, parameter.dtype)
    with torch.enable_grad():
        speeds = measure_prefill(
            model, seq_lens=list(part.train_lengths), repeats=part.repeats, backward=True
        )
    return [_row("prefill", length, 1, "train_tokens_per_s", speed) for length, speed in speeds.items()]


def _extrapolation_rows(
    model: Any, part: Any, train_len: int, val_tokens: Any, evaluate: Any
) -> list[dict[str, Any]]:
    tokens = torch.from_numpy(
        val_tokens[: part.extrapolation_tokens + train_len * max(part.extrapolation) + 1].astype("int64")
    )
    curve = evaluate(
        model,
        tokens,
        train_len=train_len,
        factors=tuple(part.extrapolation),
        max_tokens=part.extrapolation_tokens,
    )
    rows = [
        _row("extrapolation", length, 1, "loss", loss)
        for length, loss in zip(curve.lengths, curve.loss, strict=True)
    ]
    for length, losses in curve.bucket_loss.items():
        for start, loss in zip(curve.bucket_edges[:-1], losses, strict=True):
            if loss == loss:  # nan: a bucket past this length
                rows.append({**_row("position", length, 1, "loss", loss), "position": start})
    return rows


def _row(measure: str, length: int, batch: int, metric: str, value: float) -> dict[str, Any]:
    return {"measure": measure, "length": int(length), "batch": int(batch), "position": 0, "metric": metric,
            "value": float(value)}  # fmt: skip
