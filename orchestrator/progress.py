"""The live progress table drawn while a sweep runs (and by `ceiling status`)."""

from __future__ import annotations

from rich.table import Table

from orchestrator.store import Store
from orchestrator.units import format_count

STATUS_STYLE = {"done": "green", "running": "cyan", "pending": "dim", "failed": "red", "diverged": "magenta"}


def format_status_counts(counts: dict[str, int]) -> str:
    """Trial counts for people, e.g. ``8 done, 1 failed`` (known statuses in a fixed order)."""
    order = [*STATUS_STYLE, *sorted(set(counts) - set(STATUS_STYLE))]
    return ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s)) or "no trials"


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "" if value is None else format(value, spec)


def progress_row(trial) -> dict:  # type: ignore[no-untyped-def]
    """One trial as the progress table shows it: the row of ``ceiling status SWEEP --json``'s ``trials``."""
    return {
        "id": trial.id,
        "label": trial.label,
        "params_non_embedding": trial.params_non_embedding,
        "tokens": trial.tokens,
        "status": trial.status,
        "steps_done": trial.steps_done,
        "steps_total": trial.steps_total,
        "train_loss": trial.final_train_loss if trial.status == "done" else trial.last_train_loss,
        "final_val_loss": trial.final_val_loss,
        "final_val_bpb": trial.final_val_bpb,
        "tokens_per_s": trial.tokens_per_s,
        "error": trial.error,
    }


def progress_table(store: Store, sweep_name: str, *, limit: int = 40) -> Table:
    return progress_table_of_rows(
        sweep_name, [progress_row(t) for t in store.trials(sweep_name)], limit=limit
    )


def progress_table_of_rows(sweep_name: str, rows: list[dict], *, limit: int = 40) -> Table:
    """The progress table from :func:`progress_row` rows (a local store's or a server's document)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    title = f"sweep {sweep_name}: {format_status_counts(counts)}"
    table = Table(title=title, title_justify="left", expand=False)
    for column in (
        "trial",
        "arch",
        "params",
        "tokens",
        "status",
        "step",
        "train loss",
        "val loss",
        "val bpb",
        "tok/s",
    ):
        table.add_column(column, justify="right" if column not in ("trial", "arch", "status") else "left")
    # Running trials first, then the rest in plan order; long sweeps are cut to ``limit`` rows.
    ordered = sorted(rows, key=lambda r: (r["status"] != "running", r["status"] == "done"))
    for row in ordered[:limit]:
        style = STATUS_STYLE.get(row["status"], "")
        table.add_row(
            row["id"][:8],
            row["label"],
            format_count(row["params_non_embedding"]),
            format_count(row["tokens"]),
            f"[{style}]{row['status']}[/{style}]",
            f"{row['steps_done']}/{row['steps_total']}",
            _fmt(row["train_loss"]),
            _fmt(row["final_val_loss"]),
            _fmt(row["final_val_bpb"]),
            _fmt(row["tokens_per_s"], ".0f"),
        )
    if len(rows) > limit:
        table.caption = f"... and {len(rows) - limit} more (ceiling runs {sweep_name})"
    return table
