"""`Runs`: the one table every law in this package reads.

One row per measurement: a run's final result or one checkpoint of a training curve. Rows that
share a `run_id` are checkpoints of one run; the bootstrap resamples whole runs, never rows, so
checkpoints of one run are never treated as independent evidence.

Structural columns are validated on construction (so an error names the column and row once,
at the boundary); metric columns (loss, bpb, recall accuracy, ...) are validated when a fit
selects one, because a metric may legitimately be missing for runs that never evaluated it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LawInputError

STRUCTURAL = ("run_id", "params", "tokens", "compute", "group")
DEFAULT_COMPUTE_FACTOR = 6.0  # C = 6 N D: forward + backward FLOPs per parameter per token


def _rows(bad: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(bad)
    shown = ", ".join(str(i) for i in idx[:limit])
    return f"row{'s' if idx.size > 1 else ''} {shown}{' ...' if idx.size > limit else ''}"


def _positive_column(name: str, values: Any, n: int) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise LawInputError(f"column '{name}' must be numeric: {exc}") from exc
    if arr.size != n:
        raise LawInputError(f"column '{name}' has {arr.size} values, expected {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise LawInputError(f"column '{name}' has NaN/inf at {_rows(bad)}; every row needs a value")
    bad = arr <= 0
    if bad.any():
        raise LawInputError(f"column '{name}' must be > 0; non-positive at {_rows(bad)}")
    return arr


@dataclass(frozen=True)
class Runs:
    """Validated columns; build with `Runs.from_columns`, `from_frame` or `read_runs_csv`."""

    run_id: np.ndarray  # str, one per row
    params: np.ndarray  # N
    tokens: np.ndarray  # D (tokens seen at this row)
    compute: np.ndarray  # C, FLOPs (6ND unless given)
    group: np.ndarray  # str, e.g. the architecture
    metrics: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Columns kept out of `metrics` because a cell is not a number: name -> where, e.g.
    # "runs.csv line 5: column 'loss' has 'abc', not a number". Said when a fit asks for the column.
    unparsed: Mapping[str, str] = field(default_factory=dict)

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> Runs:
        """Build from a mapping of column name -> values (a dict, or a DataFrame's columns).

        Needs `params`, and `tokens` or `compute` (the missing one follows from C = 6ND, Epoch's
        convention); `run_id` defaults to one run per row, `group` to "all". Every other numeric
        column is kept as a metric.
        """
        names = list(columns.keys())
        if "params" not in names:
            raise LawInputError(f"missing column 'params' (model parameters N); got {names}")
        if "tokens" not in names and "compute" not in names:
            raise LawInputError(f"need column 'tokens' (D) or 'compute' (C FLOPs); got {names}")
        params_raw = np.asarray(columns["params"]).reshape(-1)
        n = params_raw.size
        if n == 0:
            raise LawInputError("no rows: a fit needs runs")
        params = _positive_column("params", params_raw, n)
        if "tokens" in names:
            tokens = _positive_column("tokens", columns["tokens"], n)
            compute = (
                _positive_column("compute", columns["compute"], n)
                if "compute" in names
                else DEFAULT_COMPUTE_FACTOR * params * tokens
            )
        else:
            compute = _positive_column("compute", columns["compute"], n)
            tokens = compute / (DEFAULT_COMPUTE_FACTOR * params)
        run_id = (
            np.array([str(v) for v in np.asarray(columns["run_id"]).reshape(-1)], dtype=object)
            if "run_id" in names
            else np.array([f"row{i}" for i in range(n)], dtype=object)
        )
        group = (
            np.array([str(v) for v in np.asarray(columns["group"]).reshape(-1)], dtype=object)
            if "group" in names
            else np.full(n, "all", dtype=object)
        )
        for name, arr in (("run_id", run_id), ("group", group)):
            if arr.size != n:
                raise LawInputError(f"column '{name}' has {arr.size} values, expected {n}")
        metrics: dict[str, np.ndarray] = {}
        for name in names:
            if name in STRUCTURAL:
                continue
            try:
                arr = np.asarray(columns[name], dtype=float).reshape(-1)
            except (TypeError, ValueError):
                continue  # free-text columns (notes, configs) are not metrics
            if arr.size != n:
                raise LawInputError(f"column '{name}' has {arr.size} values, expected {n}")
            metrics[name] = arr
        return cls(run_id, params, tokens, compute, group, metrics)

    @classmethod
    def from_frame(cls, frame: Any) -> Runs:
        """Build from a pandas DataFrame (duck-typed: anything with `.columns` and `[name]`)."""
        return cls.from_columns({str(c): np.asarray(frame[c]) for c in frame.columns})

    # ----- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.params.size)

    def metric(self, name: str, *, positive: bool = True) -> np.ndarray:
        """The metric column `name`, checked finite (and > 0 when a law takes its log)."""
        if name not in self.metrics and name in self.unparsed:
            raise LawInputError(self.unparsed[name])
        if name not in self.metrics:
            raise LawInputError(f"no metric column '{name}'; available: {sorted(self.metrics)}")
        arr = self.metrics[name]
        bad = ~np.isfinite(arr)
        if bad.any():
            raise LawInputError(f"metric '{name}' has NaN/inf at {_rows(bad)}; drop those rows first")
        if positive and (arr <= 0).any():
            raise LawInputError(
                f"metric '{name}' must be > 0 for a power law; non-positive at {_rows(arr <= 0)}"
            )
        return arr

    def run_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(unique run ids in first-seen order, index of each row's run)."""
        ids, first, inverse = np.unique(self.run_id.astype(str), return_index=True, return_inverse=True)
        order = np.argsort(first)  # first-seen order keeps JSON 'runs' readable
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return ids[order].astype(object), rank[inverse]

    @property
    def n_runs(self) -> int:
        return int(np.unique(self.run_id.astype(str)).size)

    def select(self, mask: np.ndarray) -> Runs:
        mask = np.asarray(mask)
        return Runs(
            self.run_id[mask],
            self.params[mask],
            self.tokens[mask],
            self.compute[mask],
            self.group[mask],
            {k: v[mask] for k, v in self.metrics.items()},
            self.unparsed,
        )

    def final(self) -> Runs:
        """One row per run: its last checkpoint (most tokens), i.e. the run's final result."""
        _, run_of_row = self.run_index()
        order = np.lexsort((self.tokens, run_of_row))
        last = np.ones(order.size, dtype=bool)
        last[:-1] = run_of_row[order][1:] != run_of_row[order][:-1]
        return self.select(np.sort(order[last]))

    def groups(self) -> list[str]:
        """Group names in first-seen order."""
        _, first = np.unique(self.group.astype(str), return_index=True)
        return [str(self.group[i]) for i in np.sort(first)]

    def by_group(self) -> dict[str, Runs]:
        return {g: self.select(self.group == g) for g in self.groups()}


def as_runs(data: Runs | Mapping[str, Any] | Any) -> Runs:
    """Accept a `Runs`, a dict of columns, a DataFrame, or a CSV path."""
    if isinstance(data, Runs):
        return data
    if isinstance(data, (str, Path)):
        return read_runs_csv(data)
    if hasattr(data, "columns") and not isinstance(data, Mapping):
        return Runs.from_frame(data)
    if isinstance(data, Mapping):
        return Runs.from_columns(data)
    raise LawInputError(
        f"cannot read runs from {type(data).__name__}; pass a Runs, dict, DataFrame or CSV path"
    )


def read_runs_csv(path: str | Path) -> Runs:
    """Read a CSV with columns params,tokens,loss[,compute,group,run_id, other metrics...]."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise LawInputError(f"runs CSV not found: {path}")
    # Bad bytes and oversized cells are input problems, named here rather than left as tracebacks.
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        lines: list[int] = []  # each row's (last) line in the file, 1-based, for error messages
        rows: list[dict[str, Any]] = []
        try:
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
        except UnicodeDecodeError as exc:
            raise LawInputError(
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                "save the CSV as UTF-8"
            ) from None
        except csv.Error as exc:
            raise LawInputError(f"{path}: unreadable CSV near line {reader.line_num}: {exc}") from None
        header: Iterable[str] = reader.fieldnames or []
    if not rows:
        raise LawInputError(f"{path}: no data rows")
    columns: dict[str, list[Any]] = {h: [] for h in header}
    cell_lines: dict[str, list[int]] = {h: [] for h in header}  # a repeated header holds more cells
    for row, line in zip(rows, lines, strict=True):
        for h in header:
            columns[h].append(row[h])
            cell_lines[h].append(line)
    parsed: dict[str, Any] = {}
    unparsed: dict[str, str] = {}
    for h, values in columns.items():
        if h in ("run_id", "group"):
            parsed[h] = values
            continue
        numbers, bad = _numbers(values)
        if bad is None:
            parsed[h] = numbers
            continue
        index, value = bad
        shown = value if len(value) <= 40 else value[:40] + "..."
        where = f"{path} line {cell_lines[h][index]}: column '{h}' has {shown!r}, not a number"
        if h in ("params", "tokens", "compute"):
            raise LawInputError(where)
        parsed[h] = values  # free text (notes), ignored as a metric; a fit that asks for it says where
        unparsed[h] = where
    runs = Runs.from_columns(parsed)
    return replace(runs, unparsed=unparsed) if unparsed else runs


def _numbers(values: list[Any]) -> tuple[list[float], tuple[int, str] | None]:
    """CSV cells as floats (blank -> NaN), or the index and text of the first cell that is not a number."""
    numbers: list[float] = []
    for index, value in enumerate(values):
        if value in ("", None):
            numbers.append(np.nan)
            continue
        try:
            numbers.append(float(value))
        except ValueError:
            return [], (index, str(value))
    return numbers, None
