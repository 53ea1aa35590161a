"""`ceiling fit | laws | predict | compare`: fitted scaling laws, from a CSV or from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli.common import BadInput, guarded, open_store, out_console, print_json
from orchestrator.cli.sweeps import DbOption, JsonOption, WorkdirOption
from orchestrator.units import parse_count

FormOption = Annotated[
    str, typer.Option("--form", help="chinchilla | power_n | power_d | power_c (+ _noE) | isoflop | envelope")
]
MetricOption = Annotated[
    str, typer.Option("--metric", help="val_loss | val_bpb | train_loss | copy_score | recall_accuracy")
]
BootOption = Annotated[int, typer.Option("--n-boot", help="bootstrap resamples over whole runs (CI width)")]
SeedOption = Annotated[int, typer.Option("--seed", help="bootstrap seed")]


def _count(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_count(value, what=what)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _scalars(value: Any) -> Any:
    """Predictions are vectorised in ``laws``; a single query reads better as plain numbers."""
    if isinstance(value, dict):
        return {k: _scalars(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_scalars(v) for v in value]
        return items[0] if len(items) == 1 else items
    return value


def _params_table(fit_json: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("parameter", "value", "95% CI"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for name, value in fit_json["params"].items():
        lo, hi = fit_json.get("ci95", {}).get(name, [None, None])
        ci = "" if lo is None else f"[{lo:.4g}, {hi:.4g}]"
        table.add_row(name, f"{value:.4g}", ci)
    for name, value in (fit_json.get("derived") or {}).items():
        if isinstance(value, (int, float)):
            lo, hi = fit_json.get("ci95", {}).get(name, [None, None])
            table.add_row(f"{name} (derived)", f"{value:.4g}", "" if lo is None else f"[{lo:.4g}, {hi:.4g}]")
    table.caption = f"{fit_json.get('n_runs')} runs, form {fit_json.get('form')}"
    return table


def fit(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with columns params,tokens,loss[,compute,group,run_id]")
    ],
    form: FormOption = "chinchilla",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
) -> None:
    """Fit a scaling law to runs in a CSV file (one fit per `group` when that column is present).

    Examples:
      ceiling fit runs.csv                      # Chinchilla approach 3, L(N, D) = E + A/N^alpha + B/D^beta
      ceiling fit runs.csv --form power_c --json
    """

    def body() -> None:
        import laws

        runs = laws.read_runs_csv(csv_file)
        groups = sorted(set(runs.group))
        if len(groups) > 1:
            document = laws.fit_groups(runs, form=form, n_boot=n_boot, seed=seed).to_json()
        else:
            document = laws.fit(runs, form, n_boot=n_boot, seed=seed).to_json()
        if json_out:
            print_json(document)
            return
        console = out_console(False)
        for group, fit_json in document["fits"].items() if "fits" in document else [(groups[0], document)]:
            console.print(_params_table(fit_json, f"{group}: {fit_json['form']}"))

    guarded(body)


def _store_fits(store, sweep: str | None, arch: str | None, metric: str, form: str, n_boot: int, seed: int):
    from orchestrator.store.law_inputs import fit_cached, law_runs

    if sweep is not None and store.get_sweep(sweep) is None:
        raise BadInput(
            f"sweep {sweep!r} is not in the store; known: {', '.join(s.name for s in store.sweeps()) or 'none'}"
        )
    try:
        runs = law_runs(store, sweep, metric=metric, arch=arch)
    except ValueError as exc:
        raise BadInput(f"--metric: {exc}") from None
    if not len(runs):
        raise BadInput(
            f"no finished runs with {metric!r}"
            + (f" for {arch!r}" if arch else "")
            + (f" in sweep {sweep!r}" if sweep else "")
            + "; run a sweep first or check --arch / --metric"
        )
    fits = {
        group: fit_cached(
            store,
            runs.only(group),
            metric=metric,
            form=form,
            sweep=sweep,
            group=group,
            n_boot=n_boot,
            seed=seed,
        )
        for group in runs.groups
    }
    return runs, fits


def laws_command(
    sweep: Annotated[str | None, typer.Argument(help="sweep name; all stored runs if omitted")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="only this architecture (name or label)")] = None,
    metric: MetricOption = "val_loss",
    form: FormOption = "chinchilla",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Fitted scaling laws per architecture from the store (cached; refitted only when runs change).

    Examples: ceiling laws quickstart  |  ceiling laws quickstart --form power_c --metric val_bpb --json
    """

    def body() -> None:
        store = open_store(db, workdir)
        runs, fits = _store_fits(store, sweep, arch, metric, form, n_boot, seed)
        document = {
            "sweep": sweep,
            "metric": metric,
            "fits": {g: f.to_json() for g, f in fits.items()},
            "excluded": runs.excluded,
        }
        if json_out:
            print_json(document)
            return
        console = out_console(False)
        for group, fit_json in document["fits"].items():
            console.print(_params_table(fit_json, f"{group}: {metric} ~ {fit_json['form']}"))
        _print_excluded(console, runs.excluded)

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
    form: FormOption = "chinchilla",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Predict the metric at a target size and token count, or at a compute budget (compute-optimal).

    Examples:
      ceiling predict --arch transformer --params 1B --tokens 20B
      ceiling predict --arch transformer --compute 1e21 --json
    """

    def body() -> None:
        n, d, c = _count(params, "--params"), _count(tokens, "--tokens"), _count(compute, "--compute")
        if (c is None) == (n is None or d is None) or (c is not None and (n or d)):
            raise BadInput("give either --params and --tokens, or --compute alone")
        store = open_store(db, workdir)
        _, fits = _store_fits(store, sweep, arch, metric, form, n_boot, seed)
        if len(fits) != 1:
            raise BadInput(f"--arch {arch!r} matches {sorted(fits)}; use one label")
        ((group, result),) = fits.items()
        if c is not None:
            optimal = result.optimal(c)
            document = {
                "arch": group,
                "metric": metric,
                "compute": c,
                **{k: _scalars(v.to_json()) for k, v in optimal.items()},
            }
        else:
            prediction = result.predict(params=n, tokens=d)
            document = {
                "arch": group,
                "metric": metric,
                "params": n,
                "tokens": d,
                "predicted": _scalars(prediction.to_json()),
            }
        document["fit"] = result.to_json()
        if json_out:
            print_json(document)
            return
        console = out_console(False)
        for key, value in document.items():
            if key != "fit":
                console.print(f"{key}: {value}")

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
    form: FormOption = "chinchilla",
    n_boot: BootOption = 1000,
    seed: SeedOption = 0,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Each architecture against the baseline: the gap on the compute-optimal frontier with a bootstrap CI,
    the exponent difference, the crossover compute, and a verdict at measured and target compute.

    Examples: ceiling compare quickstart --baseline transformer --at 1e21
    """

    def body() -> None:
        import laws

        target = _count(at, "--at")
        store = open_store(db, workdir)
        runs, fits = _store_fits(store, sweep, None, metric, form, n_boot, seed)
        if baseline not in fits:
            raise BadInput(
                f"--baseline {baseline!r} has no finished runs; architectures with runs: {sorted(fits)}"
            )
        others = [g for g in fits if g != baseline]
        if not others:
            raise BadInput(f"only {baseline!r} has runs; a comparison needs a second architecture")
        results = {
            g: laws.compare_fits(fits[g], fits[baseline], at_compute=target, name_x=g, name_base=baseline)
            for g in others
        }
        if json_out:
            print_json(
                {
                    "sweep": sweep,
                    "baseline": baseline,
                    "metric": metric,
                    "comparisons": {g: r.to_json() for g, r in results.items()},
                    "excluded": runs.excluded,
                }
            )
            return
        console = out_console(False)
        for result in results.values():
            console.print(result.verdict)

    guarded(body)


def _print_excluded(console: Any, excluded: list[dict[str, Any]], itemise_up_to: int = 3) -> None:
    """One line per excluded run, except that a reason shared by many runs (a study's WSD trunks or
    tuning trials: dozens of rows) is one summary line; ``--json`` always lists every run."""
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for row in excluded:
        by_reason.setdefault(row["reason"], []).append(row)
    for reason, rows in by_reason.items():
        if len(rows) <= itemise_up_to:
            for row in rows:
                console.print(f"excluded {row['trial'][:8]} ({row['label']}): {reason}", style="yellow")
        else:
            labels = ", ".join(sorted({str(row["label"]) for row in rows}))
            console.print(f"excluded {len(rows)} runs ({labels}): {reason} (--json lists each)", style="yellow")
