"""A sweep's law points as a small CSV anyone can refit (`ceiling fit`, or their own code).

One row per point: done trials of role main or branch (WSD trunks and tuning trials are not points
of a law). Columns: architecture, params (non-embedding), tokens, compute (6ND FLOPs), loss (final
val loss, nats per token), val_bpb, seed, role, run_id.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

from orchestrator.store.schema import LAW_ROLES

COLUMNS = ("architecture", "params", "tokens", "compute", "loss", "val_bpb", "seed", "role", "run_id")


def law_point_rows(trials: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        role = getattr(t, "role", None) or "main"
        if t.status != "done" or role not in LAW_ROLES or t.final_val_loss is None:
            continue
        rows.append(
            {
                "architecture": t.label,
                "params": int(t.params_non_embedding),
                "tokens": int(t.tokens),
                "compute": float(t.flops_6nd),
                "loss": float(t.final_val_loss),
                "val_bpb": None if t.final_val_bpb is None else float(t.final_val_bpb),
                "seed": t.seed,
                "role": role,
                "run_id": t.id,
            }
        )
    return sorted(rows, key=lambda r: (r["architecture"], r["params"], r["tokens"], r["seed"]))


def write_csv(rows: list[dict[str, Any]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
