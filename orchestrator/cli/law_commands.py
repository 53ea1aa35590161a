"""`ceiling fit | laws | predict | compare`: fitted scaling laws, from a CSV or from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import err_console, guarded, open_store, out_console, print_json
from orchestrator.cli.law_format import print_fit
from orchestrator.cli.remote import ServerOption, check_store_options, fetch_law_document
from orchestrator.cli.sweeps import DbOption, JsonOption, WorkdirOption

FormOption = Annotated[
    str,
    typer.Option(
        "--form",
        help="auto (the richest form the runs identify: chinchilla, else power_c, else power_c_noE) | "
        "chinchilla | power_n | power_d | power_c (+ _noE) | isoflop | envelope",
    ),
]
MetricOption = Annotated[
    str,
    typer.Option(
        "--metric",
        help="val_loss | val_bpb | train_loss | copy_score | recall_accuracy, or an efficiency study's "
        "final metric (decode_ms_per_token_L8192, state_bytes_L8192, decode_flatness, extrapolation_loss_x4, ...)",
    ),
]
BootOption = Annotated[int, typer.Option("--n-boot", help="bootstrap resamples over whole runs (CI width)")]
SeedOption = Annotated[int, typer.Option("--seed", help="bootstrap seed")]


def _count(value: str | None, what: str) -> float | None:
    from orchestrator.operations.laws import parse_count_option

    return parse_count_option(value, what)


def fit(
    csv_file: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns params,tokens,loss (optional: compute,group,run_id), or a `ceiling runs --csv` export"
        ),
    ],
    form: FormOption = "auto",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
) -> None:
    """Fit a scaling law to runs in a CSV file (one fit per `group` when that column is present).
    Each fit is printed with its health (healthy / weak / degenerate, and why).

    Examples:
      ceiling fit runs.csv                      # --form auto: the richest form the runs identify
      ceiling fit runs.csv --form chinchilla    # Chinchilla approach 3, L(N, D) = E + A/N^alpha + B/D^beta
      ceiling fit runs.csv --form power_c --json
      ceiling runs quickstart --csv > runs.csv && ceiling fit runs.csv --form auto   # law points only
    """

    def body() -> None:
        import laws
        from orchestrator.cli.law_csv import read_law_csv

        runs, notes = read_law_csv(csv_file)
        for line in notes:
            err_console.print(line, style="dim", highlight=False, markup=False)
        by_group = runs.by_group()

        def fit_one(table: laws.Runs) -> laws.FitResult:
            if form == laws.AUTO:
                return laws.choose_form(lambda f: laws.fit(table, f, n_boot=n_boot, seed=seed))
            return laws.fit(table, form, n_boot=n_boot, seed=seed)

        fits = {g: fit_one(table) for g, table in by_group.items()}
        if len(fits) > 1:
            document = {"fits": {g: f.to_json() for g, f in fits.items()}}
        else:
            document = next(iter(fits.values())).to_json()
        if json_out:
            print_json(document)
            return
        console = out_console(False)
        for group, fit_json in (
            document["fits"].items() if "fits" in document else [(next(iter(fits)), document)]
        ):
            print_fit(console, fit_json, f"{group}: {fit_json['form']}")

    guarded(body)


def laws_command(
    sweep: Annotated[str | None, typer.Argument(help="sweep name; all stored runs if omitted")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="only this architecture (name or label)")] = None,
    metric: MetricOption = "val_loss",
    form: FormOption = "auto",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    backtest: Annotated[
        bool,
        typer.Option(
            "--backtest",
            help="also fit without the largest size (and, separately, the largest budget), predict the "
            "held-out runs and say whether they fall inside the 95% band",
        ),
    ] = False,
    cost: Annotated[
        str | None,
        typer.Option(
            "--cost",
            help="fit the metric against this inference cost instead of training compute: an efficiency "
            "study's final metric such as decode_ms_per_token_L8192 (use --form power_c)",
        ),
    ] = None,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Fitted scaling laws per architecture from the store (cached; refitted only when runs change),
    each with its health: healthy, weak or degenerate, and the reasons.

    Examples:
      ceiling laws quickstart                       # --form auto: the richest form the runs identify
      ceiling laws quickstart --backtest            # does the law extrapolate to the held-out largest size?
      ceiling laws quickstart --form power_c --metric val_bpb --json
      ceiling laws efficiency --form power_c --cost decode_ms_per_token_L8192   # loss vs inference cost
    """

    def body() -> None:
        from orchestrator.cli.render import print_laws

        options = {"arch": arch, "metric": metric, "form": form, "n_boot": n_boot, "seed": seed}
        check_store_options(server, workdir, db)
        if server:
            document = fetch_law_document(
                server, sweep, "laws", options | {"backtest": backtest, "cost": cost}
            )
        else:
            from orchestrator.operations.laws import laws_document

            document = laws_document(open_store(db, workdir), sweep, backtest=backtest, cost=cost, **options)
        if json_out:
            print_json(document)
            return
        print_laws(out_console(False), document, backtest)

    guarded(body)


def predict(
    arch: Annotated[str, typer.Option("--arch", help="architecture (name or label) to predict for")],
    params: Annotated[
        str | None, typer.Option("--params", help="target non-embedding parameters, e.g. 1B")
    ] = None,
    tokens: Annotated[str | None, typer.Option("--tokens", help="training tokens, e.g. 20B")] = None,
    compute: Annotated[
        str | None, typer.Option("--compute", help="training FLOPs, e.g. 1e21 (compute-optimal)")
    ] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="fit on this sweep only")] = None,
    metric: MetricOption = "val_loss",
    form: FormOption = "auto",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Predict the metric at a target size and token count, or at a compute budget (compute-optimal).

    Examples:
      ceiling predict --arch transformer --params 1B --tokens 20B
      ceiling predict --arch transformer --compute 1e21 --json
    """

    def body() -> None:
        from orchestrator.cli.render import print_predict

        options = {"arch": arch, "params": params, "tokens": tokens, "compute": compute, "metric": metric}
        options |= {"form": form, "n_boot": n_boot, "seed": seed}
        check_store_options(server, workdir, db)
        if server:
            document = fetch_law_document(server, sweep, "predict", options)
        else:
            from orchestrator.operations.laws import predict_document

            document = predict_document(open_store(db, workdir), sweep=sweep, **options)
        if json_out:
            print_json(document)
            return
        print_predict(out_console(False), document)

    guarded(body)


def compare(
    sweep: Annotated[str | None, typer.Argument(help="sweep name; all stored runs if omitted")] = None,
    baseline: Annotated[
        str, typer.Option("--baseline", help="the reference architecture (label)")
    ] = "transformer",
    at: Annotated[
        str | None, typer.Option("--at", help="target compute in FLOPs for the verdict, e.g. 1e21")
    ] = None,
    metric: MetricOption = "val_loss",
    form: FormOption = "auto",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Each architecture against the baseline: the gap on the compute-optimal frontier with a bootstrap CI,
    the exponent difference, the crossover compute, and a verdict at measured and target compute.

    Examples: ceiling compare quickstart --baseline transformer --at 1e21
    """

    def body() -> None:
        from orchestrator.cli.render import print_compare

        options = {
            "baseline": baseline,
            "at": at,
            "metric": metric,
            "form": form,
            "n_boot": n_boot,
            "seed": seed,
        }
        check_store_options(server, workdir, db)
        if server:
            document = fetch_law_document(server, sweep, "compare", options)
        else:
            from orchestrator.operations.laws import compare_document

            document = compare_document(open_store(db, workdir), sweep, **options)
        if json_out:
            print_json(document)
            return
        print_compare(out_console(False), document)

    guarded(body)
