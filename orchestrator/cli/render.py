"""The human output of `status`, `runs`, `laws`, `predict` and `compare`, as a function of the `--json` document.

One renderer per command, used by the local command (document computed from the store) and by the same
command given ``--server`` (document fetched from `ceiling serve`), so both print exactly the same thing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.cli.law_format import (
    backtest_table,
    health_label,
    not_an_estimate_note,
    prediction_line,
    print_fit,
    print_health,
)
from orchestrator.units import format_count

Document = dict[str, Any]


def print_status(console: Console, document: Document, sweep: str | None) -> None:
    """`ceiling status [SWEEP]`: one sweep's progress table (from the document's ``trials``) and its
    failed trials, or one line of counts per sweep."""
    from orchestrator.progress import format_status_counts, progress_table_of_rows

    sweeps = document["sweeps"]
    if not sweeps:
        console.print("no sweeps yet; start one with `ceiling run examples/quickstart.yaml`")
    for entry in sweeps:
        if sweep is None:
            console.print(f"{entry['name']}: {format_status_counts(entry['status'])}", highlight=False)
            continue
        rows = entry.get("trials", [])
        console.print(progress_table_of_rows(entry["name"], rows, limit=10_000))
        for row in rows:
            if row["status"] in ("failed", "diverged"):
                last_line = ((row.get("error") or "").strip().splitlines() or [""])[-1]
                console.print(f"[red]{row['id'][:8]} {row['label']} {row['status']}[/red]: {last_line}")


def results_table(rows: list[Document], title: str) -> Table:
    """Trials (rows of `ceiling runs --json`) with their accounting, status and final metrics."""
    table = Table(title=title, title_justify="left")
    for column in (
        "trial",
        "arch",
        "params",
        "tokens",
        "FLOPs",
        "status",
        "att.",
        "val loss",
        "val bpb",
        "wall s",
    ):
        table.add_column(column, justify="left" if column in ("trial", "arch", "status") else "right")
    for row in rows:
        table.add_row(
            row["id"][:8],
            row["label"],
            format_count(row["params_non_embedding"]),
            format_count(row["tokens"]),
            f"{row['flops_exact']:.2e}",
            row["status"],
            str(row["attempts"]),
            _fixed(row["final_val_loss"], ".4f"),
            _fixed(row["final_val_bpb"], ".4f"),
            _fixed(row["wall_time_s"], ".1f"),
        )
    return table


def print_runs(console: Console, document: Document) -> None:
    """`ceiling runs [SWEEP]` as a table."""
    console.print(results_table(document["trials"], document.get("sweep") or "all trials"))


def print_laws(console: Console, document: Document, backtest: bool) -> None:
    """`ceiling laws`: each architecture's fit with its health, the backtest table, the excluded runs."""
    for group, fit_json in document["fits"].items():
        print_fit(console, fit_json, f"{group}: {document['metric']} ~ {fit_json['form']}")
    if backtest:
        console.print(backtest_table(document["fits"]))
    print_excluded(console, document["excluded"])


def print_predict(console: Console, document: Document) -> None:
    """`ceiling predict`: the predicted value with its band, where, and the fit it came from."""
    fit_json = document["fit"]
    predicted = document["predicted"]
    console.print(
        f"{document['arch']}: "
        + prediction_line(
            document["metric"], predicted["value"], predicted["ci95"], prediction_where(document)
        ),
        highlight=False,
    )
    for key in ("N_opt", "D_opt", "tokens_per_param"):
        if key in document:
            console.print(
                f"  {key} {document[key]['value']:.4g} (95% CI {document[key]['ci95'][0]:.4g} to "
                f"{document[key]['ci95'][1]:.4g})",
                highlight=False,
            )
    console.print(f"  from the {fit_json['form']} fit on {fit_json['n_runs']} runs", highlight=False)
    note = not_an_estimate_note(fit_json)
    if note:
        console.print(f"  {note}", style="bold red", highlight=False)
    print_health(console, fit_json)


def prediction_where(document: Document) -> str:
    """Where a prediction is made: a compute budget, or a size and a token count (and the C = 6ND a law of
    compute alone used for them)."""
    form = document["fit"]["form"]
    if "compute" in document and "params" not in document:
        compute = document["compute"]
        return f"{compute:.3g} FLOPs" + (" (compute-optimal)" if form == "chinchilla" else "")
    n, d = document["params"], document["tokens"]
    where = f"{n:.3g} params, {d:.3g} tokens"
    if form != "chinchilla":
        from laws.data import DEFAULT_COMPUTE_FACTOR

        factor = document["fit"].get("fit", {}).get("compute_factor", DEFAULT_COMPUTE_FACTOR)
        compute = factor * n * d
        where += f" (C = 6ND = {compute:.3g} FLOPs, {form} law)"
    return where


def print_compare(console: Console, document: Document) -> None:
    """`ceiling compare`: per architecture, the verdict against the baseline with both fits' health."""
    baseline = document["baseline"]
    for g, comparison in document["comparisons"].items():
        fits = {g: comparison["fits"]["x"], baseline: comparison["fits"]["baseline"]}
        health = ", ".join(f"{name} {health_label(f)}" for name, f in fits.items())
        console.print(
            f"[{comparison['form']}; {health}] {comparison['verdict']}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        for name, fit_json in fits.items():
            if health_label(fit_json) != "healthy":
                console.print(f"  {name}:", highlight=False)
                print_health(console, fit_json, indent="    ")


def print_excluded(console: Console, excluded: list[Document], itemise_up_to: int = 3) -> None:
    """One line per excluded run, except that a reason shared by many runs (a study's WSD trunks or
    tuning trials: dozens of rows) is one summary line; ``--json`` always lists every run."""
    by_reason: dict[str, list[Document]] = {}
    for row in excluded:
        by_reason.setdefault(row["reason"], []).append(row)
    for reason, rows in by_reason.items():
        if len(rows) <= itemise_up_to:
            for row in rows:
                console.print(f"excluded {row['trial'][:8]} ({row['label']}): {reason}", style="yellow")
        else:
            labels = ", ".join(sorted({str(row["label"]) for row in rows}))
            console.print(
                f"excluded {len(rows)} runs ({labels}): {reason} (--json lists each)", style="yellow"
            )


def _fixed(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)
