"""`ceiling plan | run | resume | status | runs`: submitting sweeps and reading their trials."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli.common import (
    BadInput,
    db_url,
    err_console,
    guarded,
    open_store,
    out_console,
    print_json,
    workdir_path,
)
from orchestrator.cli.remote import ServerOption, check_store_options, fetch_runs, fetch_status, say_queue
from orchestrator.units import format_count

WorkdirOption = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        help="work folder for SQLite, MLflow, checkpoints (env CEILING_WORKDIR; default ./ceiling-runs)",
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the store, e.g. postgresql://user@host/db (env CEILING_DB; default SQLite in the work folder)",
    ),
]
TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (env CEILING_TRACKING_URI; default SQLite in the work folder)",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster address, e.g. ray://head:10001 (env RAY_ADDRESS; default an embedded local cluster)",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="print one JSON document on stdout (progress goes to stderr)")
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        help="show MLflow's, alembic's and Ray's log lines here instead of in the work folder's ceiling.log",
    ),
]
AllowUnmatchedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unmatched",
        help="run a study whose architectures differ in data order, tokens, batch, seq_len or schedule shape",
    ),
]


def _matched_guard(allow_unmatched: bool):  # type: ignore[no-untyped-def]
    """A check for prepare_sweep: refuse (exit 2) an unmatched study unless allowed."""

    def check(spec, trials) -> None:  # type: ignore[no-untyped-def]
        from orchestrator.matching import check_matched, unmatched_message

        items = check_matched(spec, trials)
        if not allow_unmatched and not all(i.matched for i in items):
            raise BadInput(unmatched_message(items))

    return check


def _print_study_checks(console, spec, trials, items) -> None:  # type: ignore[no-untyped-def]
    """The matched-study check, the tuning plan and the FLOPs that cooldown branches save."""
    from orchestrator.planning import flops_saved

    if items:
        console.print("matched study (identical for every architecture):")
    for i in items:
        mark = "[green]ok[/green]" if i.matched else "[red]DIFFERS[/red]"
        console.print(f"  {mark} {i.item}: {i.detail}", highlight=False)
    if spec.tuning is not None:
        tuning = [t for t in trials if t.role == "tuning"]
        tuning_flops = sum(t.flops_exact for t in tuning)
        console.print(
            f"tuning: {len(tuning)} trials ({len(spec.tuning.lrs)} lrs"
            + (f" x {len(spec.tuning.beta2s)} beta2s" if spec.tuning.beta2s else "")
            + f", {format_count(spec.tuning.tokens)} tokens each, sizes {spec.tuning.sizes}"
            + (", larger sizes by a fitted lr(params) rule" if spec.tuning.rule == "fit" else "")
            + f"), {tuning_flops:.2e} FLOPs; the other trials take the chosen lr (shown as 'tuned')"
        )
    saved = flops_saved(trials)
    if saved is not None:
        console.print(
            f"cooldown branches: {saved['branched']:.3e} FLOPs (trunks + cooldowns) instead of "
            f"{saved['independent']:.3e} for independent runs: saves {saved['saved']:.3e} FLOPs "
            f"({saved['ratio']:.2f}x less)"
        )


def _trial_dict(trial: Any) -> dict[str, Any]:
    from orchestrator.operations.sweeps import trial_dict

    return trial_dict(trial)


def plan(
    spec_file: Annotated[Path, typer.Argument(help="sweep YAML, e.g. examples/smoke.yaml")],
    json_out: JsonOption = False,
    cluster: Annotated[
        Path | None,
        typer.Option(
            "--cluster",
            help="cluster YAML (e.g. clusters/h100x8.yaml): adds GPU-hours and make-span on that cluster",
        ),
    ] = None,
    allow_unmatched: AllowUnmatchedOption = False,
    power: Annotated[
        bool | None,
        typer.Option(
            "--power/--no-power",
            help="design power: simulate the planned study and fit it as `ceiling laws` will, to see whether "
            "each architecture's law will be identified (on by default: a summary; --power adds the tables)",
        ),
    ] = None,
    prior: Annotated[
        str | None,
        typer.Option(
            "--prior",
            help="a stored sweep, or a law-points CSV (docs/results/*-runs.csv, `ceiling runs --csv`), whose "
            "fitted laws (and seed noise) the simulation uses",
        ),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option("--noise", help="seed-to-seed sd of log final loss for the simulation, e.g. 0.005"),
    ] = None,
    simulations: Annotated[
        int,
        typer.Option(
            "--simulations",
            min=2,
            envvar="CEILING_POWER_SIMULATIONS",
            help="simulated studies per design for the design power (more: steadier shares, slower)",
        ),
    ] = 40,
    workdir: WorkdirOption = None,
    db: DbOption = None,
) -> None:
    """Dry run: list the trials a sweep would run with params, tokens, FLOPs and estimated time, and
    whether the planned design will identify each architecture's scaling law (design power).

    Examples:
      ceiling plan examples/quickstart.yaml
      ceiling plan examples/cpu-ladder.yaml --power              # the full design-power tables
      ceiling plan sweep.yaml --power --prior cpu-ladder         # simulate from an earlier sweep's laws
      ceiling plan sweep.yaml --prior docs/results/cpu-ladder-3seeds-runs.csv   # ... or its law points
      ceiling plan sweep.yaml --cluster clusters/h100x8.yaml   # GPU-hours and make-span before submitting
    """

    def body() -> None:
        from orchestrator.planning import estimated_seconds, makespan_seconds
        from orchestrator.scheduling.runner import prepare_sweep
        from orchestrator.spec import load_spec

        console = out_console(json_out)
        spec = load_spec(spec_file)
        if cluster is not None:
            from orchestrator.cluster_cost import load_cluster

            cluster_spec = load_cluster(cluster)  # bad input fails before the corpus is tokenized
        from orchestrator.kinds import kind_for_spec
        from orchestrator.matching import check_matched
        from orchestrator.planning import flops_saved

        context = prepare_sweep(
            spec,
            workdir=Path("."),
            db_url="",
            tracking_uri=None,
            console=err_console,
            write=False,
            check=_matched_guard(allow_unmatched),
        )
        trials = context.trials
        matched = check_matched(spec, trials)
        total_flops = sum(t.flops_to_run for t in trials)  # a branch spends only its cooldown
        makespan = makespan_seconds(trials, spec)
        estimate = None
        if cluster is not None:
            from orchestrator.cluster_cost import arch_factors, estimate_sweep

            estimate = estimate_sweep(trials, spec, cluster_spec, *arch_factors())
        power_document = _design_power(spec, trials, power, prior, noise, simulations, workdir, db)
        if json_out:
            print_json(
                {
                    "sweep": spec.name,
                    "trials": [t.row() | {"estimated_s": estimated_seconds(t, spec)} for t in trials],
                    "total_flops": total_flops,
                    "estimated_makespan_s": makespan,
                    "corpus_fingerprint": context.data.fingerprint,
                    "vocab_size": context.data.vocab_size,
                    "matched": [vars(i) for i in matched],
                    "flops_saved": flops_saved(trials),
                    "design_power": power_document,
                }
                | ({"cluster": estimate.to_json()} if estimate else {})
            )
            return
        table = Table(title=f"{spec.name}: {len(trials)} trials", title_justify="left")
        for column in (
            "trial",
            "arch",
            "role",
            "target",
            "non-emb params",
            "total params",
            "shape",
            "tokens",
            "tok/param",
            "steps",
            "lr",
            "FLOPs (exact)",
            "FLOPs (6ND)",
            "est. time",
        ):
            table.add_column(column, justify="left" if column in ("trial", "arch", "shape") else "right")
        for t in trials:
            model = t.config.model.shape  # the architecture's own config: its keys vary by family
            shape = f"L{model.get('n_layers')} d{model.get('d_model')}"
            table.add_row(
                t.id[:8],
                t.label,
                t.role,
                format_count(t.size_target),
                format_count(t.accounting["non_embedding_params"]),
                format_count(t.accounting["total_params"]),
                shape,
                format_count(t.tokens),
                f"{t.tokens / t.accounting['non_embedding_params']:.1f}",
                str(t.steps),
                "tuned" if t.tuned else f"{t.lr:.2e}",
                f"{t.flops_exact:.2e}",
                f"{t.flops_6nd:.2e}",
                f"{estimated_seconds(t, spec):.0f}s",
            )
        console.print(table)
        _print_study_checks(console, spec, trials, matched)
        res = spec.resources
        console.print(
            f"total {total_flops:.3e} FLOPs; {res.max_concurrent_trials} concurrent trial(s) of "
            f"{res.workers_per_trial} worker(s) x {res.cpus_per_worker:g} CPU / {res.gpus_per_worker:g} GPU; "
            f"estimated make-span ~{makespan / 60:.1f} min (rough, for an idle machine: start-up, per-step "
            "overhead and FLOPs at a size-dependent MFU; see orchestrator/cost_model.py)"
        )
        console.print(kind_for_spec(spec).describe_data(spec, context.data))
        if estimate:
            from orchestrator.cluster_cost import print_estimate

            print_estimate(console, estimate)
        if power_document:
            from orchestrator.cli.power_format import print_power_full, print_power_summary

            (print_power_full if power else print_power_summary)(console, power_document)

    guarded(body)


def _design_power(spec, trials, power, prior, noise, simulations, workdir, db):  # type: ignore[no-untyped-def]
    """The design-power document, or None when switched off (--no-power) or for a kind of study that
    fits no scaling laws (a recall study)."""
    from orchestrator.kinds import kind_for_spec

    if power is False or not kind_for_spec(spec).compares_scaling:
        return None
    if noise is not None and not 0 < noise < 1:
        raise BadInput(f"--noise must be a fraction between 0 and 1 (e.g. 0.005 for 0.5%); got {noise}")
    from orchestrator.study_power import PowerSettings, analyse, is_csv_prior

    store = open_store(db, workdir) if prior and not is_csv_prior(prior) else None
    settings = PowerSettings(noise=noise, prior_sweep=prior, n_sim=simulations, suggest=True)
    try:
        return analyse(
            spec, trials, settings, store=store, progress=lambda m: err_console.print(m, style="dim")
        )
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _execute(
    spec,
    *,
    workdir: Path | None,
    db: str | None,
    tracking_uri: str | None,
    address: str | None,
    json_out: bool,
    no_mlflow: bool,
    resume: bool,
    max_loss: float | None,
    verbose: bool,
    allow_unmatched: bool = True,
) -> None:
    from orchestrator.library_logs import LOG_FILE
    from orchestrator.scheduling.runner import prepare_sweep, run_sweep
    from orchestrator.tracking import resolve_tracking_uri

    console = out_console(json_out)
    work = workdir_path(workdir)
    url = db_url(db, work)
    tracking = None if no_mlflow else resolve_tracking_uri(tracking_uri, work)
    context = prepare_sweep(
        spec,
        workdir=work,
        db_url=url,
        tracking_uri=tracking,
        console=err_console,
        check=_matched_guard(allow_unmatched),
    )
    work.mkdir(parents=True, exist_ok=True)
    library_log = None if verbose else work / LOG_FILE
    summary = run_sweep(
        context,
        address=address,
        console=err_console,
        resume=resume,
        max_loss=max_loss,
        library_log=library_log,
    )
    trials = context.store.trials(spec.name)
    from orchestrator.store import redact

    summary |= {
        "store": redact(url),
        "mlflow": redact(tracking) if tracking and "@" in tracking else tracking,
        "workdir": str(work),
        "status": context.store.status_counts(spec.name),
    }
    if json_out:
        print_json(summary | {"trials": [_trial_dict(t) for t in trials]})
    else:
        from orchestrator.progress import format_status_counts

        console.print(_results_table(trials, spec.name))
        console.print(
            f"ran {summary.get('ran', 0)} trial(s) ({summary['to_run']} to run, "
            f"{summary['planned'] - summary['to_run']} already done); "
            f"status: {format_status_counts(summary['status'])}",
            highlight=False,
        )
        console.print(
            f"results: store {summary['store']}"
            + (f", MLflow {summary['mlflow']}" if tracking else "")
            + (f"; library logs {library_log}" if library_log and library_log.exists() else ""),
            highlight=False,
        )
        console.print(
            f"next: ceiling runs {spec.name} --csv  |  ceiling laws {spec.name}  |  ceiling dashboard"
        )
    failed = summary["status"].get("failed", 0) + summary["status"].get("pending", 0)
    if failed:
        err_console.print(
            f"{failed} trial(s) not done; see `ceiling status {spec.name}`, then `ceiling resume {spec.name}`",
            style="yellow",
        )
        raise typer.Exit(1)


def run(
    spec_file: Annotated[Path, typer.Argument(help="sweep YAML, e.g. examples/quickstart.yaml")],
    workdir: WorkdirOption = None,
    db: DbOption = None,
    tracking_uri: TrackingOption = None,
    address: AddressOption = None,
    json_out: JsonOption = False,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
    max_loss: Annotated[
        float | None, typer.Option("--max-loss", help="stop a trial as diverged if its loss exceeds this")
    ] = None,
    allow_unmatched: AllowUnmatchedOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run a sweep: plan it, store it, and train every trial not already done, with a live table.

    Examples:
      ceiling run examples/quickstart.yaml
      ceiling run sweep.yaml --address ray://head:10001 --db postgresql://me@db/ceiling --tracking-uri http://mlflow:5000
    """

    def body() -> None:
        from orchestrator.spec import load_spec

        spec = load_spec(spec_file)
        _execute(
            spec,
            workdir=workdir,
            db=db,
            tracking_uri=tracking_uri,
            address=address,
            json_out=json_out,
            no_mlflow=no_mlflow,
            resume=False,
            max_loss=max_loss,
            verbose=verbose,
            allow_unmatched=allow_unmatched,
        )

    guarded(body)


def resume(
    sweep: Annotated[str, typer.Argument(help="sweep name (see `ceiling status`)")],
    workdir: WorkdirOption = None,
    db: DbOption = None,
    tracking_uri: TrackingOption = None,
    address: AddressOption = None,
    json_out: JsonOption = False,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="do not log to MLflow")] = False,
    max_loss: Annotated[float | None, typer.Option("--max-loss")] = None,
    verbose: VerboseOption = False,
) -> None:
    """Finish what is left of a sweep after a crash or Ctrl-C (the spec is read from the store).

    Example: ceiling resume quickstart
    """

    def body() -> None:
        from orchestrator.spec import parse_spec

        store = open_store(db, workdir)
        row = store.get_sweep(sweep)
        if row is None:
            known = ", ".join(s.name for s in store.sweeps()) or "none yet"
            raise BadInput(f"sweep {sweep!r} is not in the store; known sweeps: {known}")
        spec = parse_spec(row.spec, f"stored spec of {sweep}")
        _execute(
            spec,
            workdir=workdir or (Path(row.workdir) if row.workdir else None),
            db=db,
            tracking_uri=tracking_uri,
            address=address,
            json_out=json_out,
            no_mlflow=no_mlflow,
            resume=True,
            max_loss=max_loss,
            verbose=verbose,
        )

    guarded(body)


def _results_table(trials: list, title: str) -> Table:
    from orchestrator.cli.render import results_table
    from orchestrator.operations.sweeps import trial_dict

    return results_table([trial_dict(t) for t in trials], title)


def status(
    sweep: Annotated[str | None, typer.Argument(help="sweep name; all sweeps if omitted")] = None,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Progress of one sweep (per trial) or of every sweep (counts by status).

    Examples: ceiling status  |  ceiling status quickstart --json  |  ceiling status quickstart --server http://host:8000
    """

    def body() -> None:
        from orchestrator.cli.render import print_status

        check_store_options(server, workdir, db)
        if server:
            document = fetch_status(server, sweep)
            if sweep:
                say_queue(document)
        else:
            from orchestrator.operations.sweeps import status_document

            document = status_document(open_store(db, workdir), sweep)
        if json_out:
            print_json(document)
            return
        print_status(out_console(False), document, sweep)

    guarded(body)


def runs(
    sweep: Annotated[str | None, typer.Argument(help="sweep name; every trial if omitted")] = None,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="print CSV on stdout")] = False,
    evals: Annotated[
        bool, typer.Option("--evals", help="include every eval row (curves), not just final records")
    ] = False,
    law_points: Annotated[
        bool,
        typer.Option(
            "--law-points",
            help="with --csv: one row per law point (done main/branch trials): architecture, params, tokens, "
            "compute, loss, val_bpb, seed, role, run_id; `ceiling fit` reads it as it is",
        ),
    ] = False,
    efficiency: Annotated[
        bool,
        typer.Option(
            "--efficiency",
            help="an efficiency study's measurements, one number a row (trial, architecture, size, measure, "
            "length, batch, position, metric, value): CSV, or --json",
        ),
    ] = False,
    server: ServerOption = None,
) -> None:
    """Trials with their accounting and final metrics, as a table, JSON or CSV.

    Examples: ceiling runs quickstart --csv > runs.csv  |  ceiling runs quickstart --json --evals
              ceiling runs cpu-ladder --csv --law-points > cpu-ladder-runs.csv
              ceiling runs efficiency --efficiency > efficiency-measurements.csv
    """

    def body() -> None:
        from orchestrator.operations import sweeps as operations

        check_store_options(server, workdir, db)
        if server and efficiency:
            raise BadInput(
                "--efficiency: not served over HTTP yet; run it against the store (--db or --workdir)"
            )
        if server:
            operations.check_runs_options(csv_out=csv_out, law_points=law_points)
            _remote_runs(
                server, sweep, json_out=json_out, csv_out=csv_out, evals=evals, law_points=law_points
            )
            return
        store = open_store(db, workdir)
        operations.require_sweep(store, sweep)
        if efficiency:
            from orchestrator.store.efficiency import measurements, measurements_csv

            rows = measurements(store, sweep)
            if json_out:
                print_json({"sweep": sweep, "measurements": rows})
            else:
                sys.stdout.write(measurements_csv(rows))
        elif law_points:
            operations.check_runs_options(csv_out=csv_out, law_points=law_points)
            sys.stdout.write(operations.law_points_csv(store, sweep))
        elif json_out:
            print_json(operations.runs_document(store, sweep, evals=evals))
        elif csv_out:
            sys.stdout.write(operations.runs_csv(store, sweep))
        else:
            from orchestrator.cli.render import print_runs

            print_runs(out_console(False), operations.runs_document(store, sweep))

    guarded(body)


def _remote_runs(
    server: str, sweep: str | None, *, json_out: bool, csv_out: bool, evals: bool, law_points: bool
) -> None:
    """`ceiling runs ... --server`: the same choice of output as the local command, from the server."""
    if law_points or (csv_out and not json_out):
        sys.stdout.write(fetch_runs(server, sweep, evals=False, csv=True, law_points=law_points))
        return
    document = fetch_runs(server, sweep, evals=evals and json_out, csv=False, law_points=False)
    if json_out:
        print_json(document)
    else:
        from orchestrator.cli.render import print_runs

        print_runs(out_console(False), document)
