"""`ceiling report SWEEP --out report.html`: one self-contained HTML file to share a study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import BadInput, err_console, guarded, open_store
from orchestrator.cli.law_commands import BootOption, SeedOption
from orchestrator.cli.remote import ServerOption, check_store_options, fetch_report
from orchestrator.cli.sweeps import DbOption, WorkdirOption


def report(
    sweep: Annotated[str, typer.Argument(help="sweep name, as in `ceiling status`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="val_loss (= final_val_loss) | val_bpb | train_loss | copy_score | recall_accuracy",
        ),
    ] = "val_loss",
    form: Annotated[
        str,
        typer.Option(
            "--form",
            help="the law of compute to fit and compare: auto (the richest form the runs identify) | "
            "chinchilla | power_c | power_c_noE",
        ),
    ] = "auto",
    baseline: Annotated[
        str, typer.Option("--baseline", help="the reference architecture (label) for the verdicts")
    ] = "transformer",
    at: Annotated[
        str | None, typer.Option("--at", help="target compute in FLOPs for the verdicts, e.g. 1e21")
    ] = None,
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Write one self-contained HTML report of a sweep: its settings and code version, loss against
    compute with the fitted laws and bands, isoFLOP profiles, fitted parameters with CIs, the comparison
    with the baseline and its verdicts (as `ceiling compare` prints them), recall, tuning, and every
    excluded, failed or diverged trial with the reason. The file needs no network to open.

    Examples:
      ceiling report quickstart --out quickstart.html
      ceiling report quickstart --out summary.md      # the same numbers as a Markdown summary, no figures
      ceiling report ladder --out ladder.html --baseline transformer --at 1e21 --metric val_bpb
      ceiling report ladder --out ladder.html --server http://host:8000   # made by a ceiling server
    """

    def body() -> None:
        from orchestrator.operations.report import report_settings, write_report_file

        settings = report_settings(
            metric=metric, form=form, baseline=baseline, at=at, n_boot=n_boot, seed=seed
        )
        target = out.expanduser()
        if target.is_dir():
            raise BadInput(f"--out: {target} is a folder; give a file name such as {target / 'report.html'}")
        check_store_options(server, workdir, db)
        if server:
            options = {"metric": metric, "form": form, "baseline": baseline, "at": at, "n_boot": n_boot}
            content = fetch_report(server, sweep, options | {"seed": seed}, target.suffix.lower() == ".md")
            target.write_bytes(content)
        else:
            store = open_store(db, workdir)
            try:
                write_report_file(
                    store, sweep, target, settings, progress=lambda line: err_console.print(line, style="dim")
                )
            finally:
                store.close()
        size_mb = target.stat().st_size / 2**20
        what = "Markdown summary" if target.suffix.lower() == ".md" else "opens offline"
        err_console.print(f"wrote {target} ({size_mb:.1f} MB, {what})")

    guarded(body)
