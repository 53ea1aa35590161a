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


def progress_table(store: Store, sweep_name: str, *, limit: int = 40) -> Table:
    trials = store.trials(sweep_name)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
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
    ordered = sorted(trials, key=lambda t: (t.status != "running", t.status == "done"))
    for trial in ordered[:limit]:
        style = STATUS_STYLE.get(trial.status, "")
        table.add_row(
            trial.id[:8],
            trial.label,
            format_count(trial.params_non_embedding),
            format_count(trial.tokens),
            f"[{style}]{trial.status}[/{style}]",
            f"{trial.steps_done}/{trial.steps_total}",
            _fmt(trial.final_train_loss if trial.status == "done" else trial.last_train_loss),
            _fmt(trial.final_val_loss),
            _fmt(trial.final_val_bpb),
            _fmt(trial.tokens_per_s, ".0f"),
        )
    if len(trials) > limit:
        table.caption = f"... and {len(trials) - limit} more (ceiling runs {sweep_name})"
    return table
