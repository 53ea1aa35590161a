"""Fitted laws from the store: the documents of ``ceiling laws``, ``predict`` and ``compare --json``.

Fits come from the store's fit cache (refitted only when the runs change), each with its health.
"""

from __future__ import annotations

from typing import Any

from orchestrator.operations.errors import BadInput, require_sweep
from orchestrator.units import parse_count


def parse_count_option(value: str | None, what: str) -> float | None:
    """A count option (``1B``, ``20e9``, ``1e21``) as a number; bad text is :class:`BadInput` naming ``what``."""
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


def checked_runs(
    store: Any, sweep: str | None, arch: str | None, metric: str, cost: str | None = None
) -> Any:
    """The law inputs of a sweep (or of every stored run), refusing an unknown sweep, metric or no runs.
    ``cost``: a final metric (e.g. decode_ms_per_token_L8192) fitted against instead of training compute."""
    from orchestrator.store.law_inputs import law_runs

    require_sweep(store, sweep, known_label="known", none="none")
    try:
        runs = law_runs(store, sweep, metric=metric, arch=arch, cost=cost)
    except ValueError as exc:
        raise BadInput(
            f"--{'cost' if cost and str(exc).startswith(f'unknown metric {cost!r}') else 'metric'}: {exc}"
        ) from None
    if not len(runs):
        raise BadInput(
            f"no finished runs with {metric!r}"
            + (f" for {arch!r}" if arch else "")
            + (f" in sweep {sweep!r}" if sweep else "")
            + "; run a sweep first or check --arch / --metric"
        )
    return runs


def store_fits(
    store: Any,
    sweep: str | None,
    arch: str | None,
    metric: str,
    form: str,
    n_boot: int,
    seed: int,
    backtest: bool = False,
    cost: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The runs and one cached fit per architecture (group) of them."""
    from orchestrator.store.law_inputs import fit_cached

    runs = checked_runs(store, sweep, arch, metric, cost)
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
            backtest=backtest,
        )
        for group in runs.groups
    }
    return runs, fits


def laws_document(
    store: Any,
    sweep: str | None = None,
    *,
    arch: str | None = None,
    metric: str = "val_loss",
    form: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    backtest: bool = False,
    cost: str | None = None,
) -> dict[str, Any]:
    """``ceiling laws [SWEEP] --json``: one fit per architecture with its health, and the excluded runs.
    ``cost``: fit the metric against this inference cost instead of training compute (named in the document)."""
    runs, fits = store_fits(store, sweep, arch, metric, form, n_boot, seed, backtest, cost)
    document = {
        "sweep": sweep,
        "metric": metric,
        "fits": {g: f.to_json() for g, f in fits.items()},
        "excluded": runs.excluded,
    }
    if cost is not None:
        document["cost"] = cost
    return document


def laws_features(form: str) -> tuple[str, ...]:
    from laws import FORMS

    return FORMS[form].features if form in FORMS else ()


def predict_document(
    store: Any,
    *,
    arch: str,
    params: str | None = None,
    tokens: str | None = None,
    compute: str | None = None,
    sweep: str | None = None,
    metric: str = "val_loss",
    form: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """``ceiling predict --json``: the metric at (params, tokens), or compute-optimal at a compute budget.

    ``params``, ``tokens`` and ``compute`` are the option texts (``1B``, ``20B``, ``1e21``).
    """
    n = parse_count_option(params, "--params")
    d = parse_count_option(tokens, "--tokens")
    c = parse_count_option(compute, "--compute")
    if (c is None) == (n is None or d is None) or (c is not None and (n or d)):
        raise BadInput("give either --params and --tokens, or --compute alone")
    _, fits = store_fits(store, sweep, arch, metric, form, n_boot, seed)
    if len(fits) != 1:
        raise BadInput(f"--arch {arch!r} matches {sorted(fits)}; use one label")
    ((group, result),) = fits.items()
    if c is not None:
        if result.form != "chinchilla" and "compute" not in laws_features(result.form):
            raise BadInput(f"--compute needs a law of compute; the {result.form} fit has none")
        if result.form == "chinchilla":
            optimal = result.optimal(c)
            numbers = {k: _scalars(v.to_json()) for k, v in optimal.items()}
        else:
            numbers = {"predicted": _scalars(result.predict(compute=c).to_json())}
        document = {"arch": group, "metric": metric, "compute": c, **numbers}
    else:
        if result.form == "chinchilla":
            prediction = result.predict(params=n, tokens=d)
        elif "compute" in laws_features(result.form):
            # A law of compute alone predicts (N, D) through C = 6ND: the CLI says so beside the number.
            prediction = result.predict(compute=result.compute_factor * n * d)
        else:
            raise BadInput(
                f"the {result.form} fit cannot predict at --params and --tokens; use --form chinchilla"
            )
        document = {
            "arch": group,
            "metric": metric,
            "params": n,
            "tokens": d,
            "predicted": _scalars(prediction.to_json()),
        }
    document["fit"] = result.to_json()
    return document


def compare_document(
    store: Any,
    sweep: str | None = None,
    *,
    baseline: str = "transformer",
    at: str | None = None,
    metric: str = "val_loss",
    form: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """``ceiling compare [SWEEP] --json``: each architecture against the baseline, with verdicts."""
    import laws
    from orchestrator.store.law_inputs import comparable_fits

    target = parse_count_option(at, "--at")
    runs = checked_runs(store, sweep, None, metric)
    if baseline not in runs.groups:
        raise BadInput(
            f"--baseline {baseline!r} has no finished runs; architectures with runs: {runs.groups}"
        )
    others = [g for g in runs.groups if g != baseline]
    if not others:
        raise BadInput(f"only {baseline!r} has runs; a comparison needs a second architecture")
    results = {}
    for g in others:
        fit_x, fit_base = comparable_fits(
            store, runs, g, baseline, form=form, sweep=sweep, n_boot=n_boot, seed=seed
        )
        results[g] = laws.compare_fits(fit_x, fit_base, at_compute=target, name_x=g, name_base=baseline)
    return {
        "sweep": sweep,
        "baseline": baseline,
        "metric": metric,
        "comparisons": {g: r.to_json() for g, r in results.items()},
        "excluded": runs.excluded,
    }
