"""Reads and writes of the efficiency study's measurements, and the names of its headline metrics.

A worker writes a trial's measurements once, at its end, fenced by attempt like every worker write
(``record_efficiency``). Its headline numbers are also final metrics of the trial, named here
(``headline_metrics``), so ``ceiling runs``, ``ceiling compare --metric`` and laws read them as they
read the loss: ``decode_ms_per_token_L8192`` is the decode cost at a context of 8192 tokens.
Imports no torch, Ray or DeepSpeed (the dashboard reads this).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select

from orchestrator.store.efficiency_schema import MEASURES, EfficiencyMeasurement
from orchestrator.store.repository import StaleAttempt, Store
from orchestrator.store.schema import SweepTrial, Trial

# headline metric name pattern -> higher is better
HEADLINE_METRICS: dict[str, bool] = {
    r"decode_ms_per_token_L\d+": False,  # batch 1: the cost of one generated token after L of context
    r"decode_tokens_per_s_L\d+_b\d+": True,
    r"state_bytes_L\d+": False,  # batch 1: recurrent state or KV cache held after L tokens
    r"decode_flatness": True,  # tokens/s at the longest L over the shortest, batch 1
    r"prefill_tokens_per_s_T\d+": True,
    r"train_tokens_per_s_T\d+": True,  # a training step (forward + backward), batch 1
    r"extrapolation_loss_x\d+": False,  # val loss at x times the training length
    r"extrapolation_ratio_x\d+": False,  # that loss over the loss at the training length
}
METRIC_EXAMPLES = "decode_ms_per_token_L8192, state_bytes_L8192, decode_flatness, extrapolation_loss_x4"
MEASUREMENT_COLUMNS = ("measure", "length", "batch", "position", "metric", "value")
TRIAL_COLUMNS = ("trial_id", "label", "arch", "size_target", "params_non_embedding", "seed", "role", "status")


def efficiency_metric(name: str) -> tuple[bool, float | None] | None:
    """(higher is better, best possible) of a headline metric name, or None if it names none."""
    for pattern, higher in HEADLINE_METRICS.items():
        if re.fullmatch(pattern, name):
            return higher, None
    return None


def headline_metrics(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """The final metrics a trial's measurement rows give (see HEADLINE_METRICS)."""
    out: dict[str, float] = {}
    decode_b1: dict[int, float] = {}
    base_loss = None
    rows = list(rows)
    for row in rows:
        measure, length, batch, metric, value = (
            row["measure"], row["length"], row.get("batch", 1), row["metric"], float(row["value"]),
        )  # fmt: skip
        if measure == "decode" and metric == "tokens_per_s":
            out[f"decode_tokens_per_s_L{length}_b{batch}"] = value
            if batch == 1:
                decode_b1[length] = value
                out[f"decode_ms_per_token_L{length}"] = 1000.0 / value if value > 0 else float("inf")
        elif measure == "decode" and metric == "state_bytes" and batch == 1:
            out[f"state_bytes_L{length}"] = value
        elif measure == "prefill" and metric == "tokens_per_s" and batch == 1:
            out[f"prefill_tokens_per_s_T{length}"] = value
        elif measure == "prefill" and metric == "train_tokens_per_s" and batch == 1:
            out[f"train_tokens_per_s_T{length}"] = value
    extrapolation = {r["length"]: float(r["value"]) for r in rows if r["measure"] == "extrapolation"}
    if extrapolation:
        train_len = min(extrapolation)  # the first factor is the training length itself (x1)
        base_loss = extrapolation[train_len]
        for length, loss in sorted(extrapolation.items()):
            factor = length // train_len
            out[f"extrapolation_loss_x{factor}"] = loss
            out[f"extrapolation_ratio_x{factor}"] = loss / base_loss if base_loss else float("nan")
    if len(decode_b1) >= 2:
        shortest, longest = min(decode_b1), max(decode_b1)
        out["decode_flatness"] = decode_b1[longest] / decode_b1[shortest]
    return out


def record_efficiency(store: Store, trial_id: str, attempt: int, rows: Sequence[dict[str, Any]]) -> None:
    """Replace a trial's measurements with ``rows`` ({measure, length, batch, position, metric, value}).

    Fenced: rows from an attempt that is no longer the trial's current one are refused (StaleAttempt).
    """
    bad = sorted({row["measure"] for row in rows} - set(MEASURES))
    if bad:
        raise ValueError(f"unknown measure(s) {bad}; known: {', '.join(MEASURES)}")
    values = [
        {
            "trial_id": trial_id,
            "measure": row["measure"],
            "length": int(row["length"]),
            "batch": int(row.get("batch", 1)),
            "position": int(row.get("position", 0)),
            "metric": row["metric"],
            "value": float(row["value"]),
        }
        for row in rows
    ]

    def op(session: Any) -> None:
        current = session.scalar(select(Trial.attempts).where(Trial.id == trial_id).with_for_update())
        if current != attempt:
            raise StaleAttempt(f"trial {trial_id}: attempt {attempt} is no longer current")
        session.execute(delete(EfficiencyMeasurement).where(EfficiencyMeasurement.trial_id == trial_id))
        session.add_all(EfficiencyMeasurement(**value) for value in values)

    store._write(op)


def measurements(store: Store, sweep: str | None = None) -> list[dict[str, Any]]:
    """Every measurement of a sweep's trials (or of every trial), with the trial's columns beside it:
    one flat row per number, in TRIAL_COLUMNS + ``final_val_loss``, ``copy_score`` + MEASUREMENT_COLUMNS."""

    def op(session: Any) -> list[dict[str, Any]]:
        query = select(Trial, EfficiencyMeasurement).join(
            EfficiencyMeasurement, EfficiencyMeasurement.trial_id == Trial.id
        )
        if sweep is not None:
            query = query.join(SweepTrial, SweepTrial.trial_id == Trial.id).where(
                SweepTrial.sweep_name == sweep
            )
        query = query.order_by(
            Trial.label, Trial.size_target, Trial.id, EfficiencyMeasurement.measure,
            EfficiencyMeasurement.length, EfficiencyMeasurement.batch, EfficiencyMeasurement.position,
            EfficiencyMeasurement.metric,
        )  # fmt: skip
        out = []
        for trial, row in session.execute(query):
            final = trial.final_metrics or {}
            out.append(
                {
                    "trial_id": trial.id,
                    "label": trial.label,
                    "arch": trial.arch,
                    "size_target": trial.size_target,
                    "params_non_embedding": trial.params_non_embedding,
                    "seed": trial.seed,
                    "role": trial.role or "main",
                    "status": trial.status,
                    "final_val_loss": trial.final_val_loss,
                    "copy_score": final.get("copy_score"),
                    **{column: getattr(row, column) for column in MEASUREMENT_COLUMNS},
                }
            )
        return out

    return store._read(op)


def measurements_csv(rows: Sequence[dict[str, Any]]) -> str:
    """``measurements`` rows as CSV text (``ceiling runs SWEEP --efficiency``)."""
    import csv
    import io

    columns = [*TRIAL_COLUMNS, "final_val_loss", "copy_score", *MEASUREMENT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def efficiency_study(store: Store, sweep: str | None = None) -> list[dict[str, Any]]:
    """The efficiency kind's points: the done trials' measurements (see ``measurements``)."""
    return [row for row in measurements(store, sweep) if row["status"] == "done"]
