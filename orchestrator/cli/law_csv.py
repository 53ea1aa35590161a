"""`ceiling fit` input: a plain law CSV (params,tokens,loss[,compute,group,run_id]) or one of
ceiling's own exports, so the README's `ceiling runs SWEEP --csv > runs.csv; ceiling fit runs.csv`
works as printed, and a committed law-points file (docs/results/*-runs.csv) refits as it is.

An export is recognised by its columns; only law points are kept (done trials of role main or
branch: WSD trunks and tuning trials are not points of a law), and what was left out is said.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

# Column of an export -> the law CSV's column. `ceiling runs --csv` writes the left-hand names;
# the law-points files under docs/results/ name the architecture `architecture`.
ALIASES = {
    "id": "run_id",
    "label": "group",
    "architecture": "group",
    "params_non_embedding": "params",
    "flops_6nd": "compute",
    "final_val_loss": "loss",
    "final_val_bpb": "val_bpb",
}
LAW_ROLES = ("main", "branch")
DIRECT = ("run_id", "group", "params", "tokens", "compute", "loss", "val_bpb", "seed")


def is_export(header: list[str]) -> bool:
    return ("params_non_embedding" in header and "final_val_loss" in header) or "architecture" in header


def read_law_csv(path: Path) -> tuple[Any, list[str]]:
    """(laws.Runs, notes for the user)."""
    import laws

    if not path.is_file():
        raise laws.LawInputError(f"runs CSV not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        header = []  # laws.read_runs_csv names what is wrong with the bytes, line by line
    if not is_export(header):
        return laws.read_runs_csv(path), []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise laws.LawInputError(f"{path}: unreadable CSV export ({exc}); save it as UTF-8 CSV") from None
    kept, dropped = [], 0
    for row in rows:
        if row.get("status", "done") != "done" or row.get("role", "main") not in LAW_ROLES:
            dropped += 1
            continue
        kept.append(row)
    if not kept:
        raise laws.LawInputError(f"{path}: no finished law points (done trials of role main or branch)")
    columns: dict[str, list[Any]] = {}
    for name in DIRECT:  # a law-points file already uses the law CSV's names
        if name in header:
            columns[name] = [row[name] for row in kept]
    for source, target in ALIASES.items():
        if source in header and target not in columns:
            columns[target] = [row[source] for row in kept]
    parsed = {k: v if k in ("run_id", "group") else _floats(path, k, v) for k, v in columns.items()}
    notes = [f"{path}: read as a ceiling export ({len(kept)} law points)"]
    if dropped:
        notes.append(
            f"left out {dropped} rows that are not law points (WSD trunks, tuning, unfinished trials)"
        )
    return laws.Runs.from_columns(parsed), notes


def _floats(path: Path, column: str, values: list[str]) -> list[float]:
    import laws

    out = []
    for i, value in enumerate(values):
        try:
            out.append(float(value) if value != "" else float("nan"))
        except ValueError:
            raise laws.LawInputError(
                f"{path}: column {column!r} has {value!r} (law point {i + 1}), not a number"
            ) from None
    return out
