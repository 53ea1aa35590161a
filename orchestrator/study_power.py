"""Design power of a planned sweep: its law points per architecture -> `laws.design_power`.

The planner knows each architecture's law points (realised non-embedding parameters and tokens of
every main trial or cooldown branch); this module turns them into designs, picks the reference law
(a prior sweep's fit, or Epoch's exponents rescaled to the loss range expected for the data) and
the noise level (measured from a prior sweep's seeds, given, or the default), and runs the
simulation. Recall studies have no loss law and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.store.schema import LAW_ROLES

# Final val loss (nats per token) spanned by small byte-level ladders on the stdlib corpus: the
# CPU study measured 1.76-2.75 from 16k to 128k parameters and 127k to 256k tokens.
BYTE_LOSS_RANGE = (1.7, 2.8)
# BPE vocabularies at small scale (tens of millions of parameters and below) sit around 3-5 nats.
BPE_LOSS_RANGE = (3.0, 5.0)


@dataclass(frozen=True)
class PowerSettings:
    noise: float | None = None  # None: from the prior's seeds, else laws' default
    prior_sweep: str | None = None  # a stored sweep's name, or a law-points CSV (`ceiling runs --csv`)
    n_sim: int | None = None
    suggest: bool = True


def law_points(trials: list[Any]) -> dict[str, tuple[list[float], list[float]]]:
    """label -> (params, tokens) of its law points, from planned trials."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for t in trials:
        if t.role not in LAW_ROLES:
            continue
        params, tokens = points.setdefault(t.label, ([], []))
        params.append(float(t.accounting["non_embedding_params"]))
        tokens.append(float(t.tokens))
    return points


def measured_noise(store: Any, sweep: str) -> float | None:
    """Pooled seed-to-seed standard deviation of log final val loss over points with >= 2 seeds."""
    groups: dict[tuple, list[float]] = {}
    for trial in store.trials(sweep):
        if trial.status != "done" or (getattr(trial, "role", None) or "main") not in LAW_ROLES:
            continue
        if trial.final_val_loss is None:
            continue
        key = (trial.label, round(float(trial.params_non_embedding)), int(trial.tokens))
        groups.setdefault(key, []).append(float(np.log(trial.final_val_loss)))
    return pooled_log_sd(groups)


def pooled_log_sd(groups: dict[tuple, list[float]]) -> float | None:
    """Pooled standard deviation of log values within groups (the law points repeated over seeds)."""
    replicated = [np.asarray(v) for v in groups.values() if len(v) >= 2]
    if not replicated:
        return None
    dof = sum(v.size - 1 for v in replicated)
    return float(np.sqrt(sum(((v - v.mean()) ** 2).sum() for v in replicated) / dof))


def is_csv_prior(prior: str | None) -> bool:
    """`--prior` names a law-points CSV (a file that exists) rather than a stored sweep."""
    return bool(prior) and Path(str(prior)).suffix.lower() == ".csv"


def analyse(
    spec: Any,
    trials: list[Any],
    settings: PowerSettings,
    *,
    store: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """The design-power document of a planned sweep (None for recall studies)."""
    from laws import design_power as dp

    if spec.task is not None:
        return None
    points = law_points(trials)
    if not points:
        return None
    training = spec.training
    designs = {
        label: dp.design_from_points(
            params, tokens, branches=bool(training.branches), cooldown_frac=training.cooldown_frac
        )
        for label, (params, tokens) in points.items()
    }
    loss_range = BYTE_LOSS_RANGE if spec.data.tokenizer == "byte" else BPE_LOSS_RANGE
    priors: dict[str, Any] = {}
    noise = settings.noise
    noise_source = "given (--noise)" if noise is not None else None
    if settings.prior_sweep:
        if is_csv_prior(settings.prior_sweep):
            priors, scatter, seed_noise = _prior_laws_from_csv(Path(settings.prior_sweep), progress)
        else:
            priors, scatter = _prior_laws(store, settings.prior_sweep, progress)
            seed_noise = measured_noise(store, settings.prior_sweep) if noise is None else None
        if noise is None:
            noise = seed_noise
            if noise is not None:
                noise_source = f"measured from the seeds of {_prior_name(settings.prior_sweep)}"
            elif scatter is not None:
                # Without seeds, the runs' scatter about their own fitted laws bounds the noise from
                # above (it also holds any misfit of the form): the cautious choice for a plan.
                noise = scatter
                noise_source = (
                    f"the median scatter of {_prior_name(settings.prior_sweep)}'s runs about their chinchilla "
                    "laws (no seeds to measure noise alone)"
                )
    if noise is None:
        noise = dp.DEFAULT_NOISE
        noise_source = "default (no seeded sweep measured it; --noise or --prior SWEEP to change)"

    def law_for(label: str, design: Any) -> Any:
        if label in priors:
            return priors[label]
        return dp.epoch_reference(design, loss_range)

    results = dp.simulate_many(
        designs,
        law_for,
        noise=noise,
        n_sim=settings.n_sim or dp.DEFAULT_SIMULATIONS,
        suggest=settings.suggest,
        progress=progress,
    )
    return {
        "noise": noise,
        "noise_source": noise_source,
        "loss_range": list(loss_range),
        "prior_sweep": settings.prior_sweep,
        "architectures": {label: r.to_json() for label, r in results.items()},
        "likely_degenerate": sorted(label for label, r in results.items() if r.likely_degenerate),
    }


def _prior_name(prior: str) -> str:
    return f"the law points in {prior}" if is_csv_prior(prior) else f"sweep {prior!r}"


def _prior_law(result: Any, group: str, where: str) -> Any:
    """The reference law a prior fit gives. A degenerate fit still gives its point estimate: it is
    what the data said (typically a size term too small to resolve), and simulating a new design
    from it asks the honest question, whereas Epoch's exponents would promise identification the
    prior data never showed (the CPU ladder's plan said 65-100% healthy; 0 of 12 came out so)."""
    from laws.design_power import law_from_fit

    degenerate = result.health is not None and result.health.is_degenerate
    note = " (a degenerate fit: its point estimate)" if degenerate else ""
    return law_from_fit(result.params, f"the chinchilla law of {group} fitted to {where}{note}")


def _prior_laws(
    store: Any, sweep: str, progress: Callable[[str], None] | None
) -> tuple[dict[str, Any], float | None]:
    """Per-architecture Chinchilla laws of an earlier sweep, and the median robust residual scale
    of its chinchilla fits (log loss)."""
    from laws import LawInputError
    from laws.errors import FitDidNotConverge
    from orchestrator.store.law_inputs import fit_cached, law_runs

    if store is None or store.get_sweep(sweep) is None:
        raise ValueError(
            f"--prior: sweep {sweep!r} is not in the store (check --workdir / --db, or pass a law-points "
            "CSV such as docs/results/cpu-ladder-3seeds-runs.csv)"
        )
    runs = law_runs(store, sweep, metric="val_loss")
    out = {}
    scatter: list[float] = []
    for group in runs.groups:
        if progress:
            progress(f"design power: fitting the prior law of {group} from sweep {sweep!r}")
        try:
            result = fit_cached(
                store,
                runs.only(group),
                metric="val_loss",
                form="chinchilla",
                sweep=sweep,
                group=group,
                n_boot=200,
            )
        except (LawInputError, FitDidNotConverge):
            continue
        if result.settings.get("residual_rms_log") is not None:
            scatter.append(float(result.settings["residual_rms_log"]))
        out[group] = _prior_law(result, group, f"sweep {sweep!r}")
    return out, (float(np.median(scatter)) if scatter else None)


# Bootstrap resamples for a CSV prior's fits: only the point estimate and its health are used, and
# a CSV has no fit cache, so fewer than `laws`' 200 keep `plan --prior runs.csv` near a minute.
CSV_PRIOR_BOOT = 100


def _prior_laws_from_csv(
    path: Path, progress: Callable[[str], None] | None
) -> tuple[dict[str, Any], float | None, float | None]:
    """(laws per architecture, median residual scale, seed noise) of a law-points CSV: the committed
    docs/results/*-runs.csv or a `ceiling runs --csv` export, so a design can be checked against a
    study whose store is not at hand."""
    import laws
    from laws.errors import FitDidNotConverge
    from orchestrator.cli.law_csv import read_law_csv

    try:
        runs, _notes = read_law_csv(path)
    except laws.LawInputError as exc:
        raise ValueError(f"--prior: {exc}") from None
    seeds = runs.metrics.get("seed")
    loss = runs.metric("loss")
    repeated: dict[tuple, list[float]] = {}
    for i in range(len(runs)):
        key = (str(runs.group[i]), round(float(runs.params[i])), int(runs.tokens[i]))
        if seeds is not None:
            repeated.setdefault(key, []).append(float(np.log(loss[i])))
    out, scatter = {}, []
    for group, table in runs.by_group().items():
        if progress:
            progress(f"design power: fitting the prior law of {group} from {path}")
        try:
            result = laws.fit(table, "chinchilla", n_boot=CSV_PRIOR_BOOT, n_jobs=1)
        except (laws.LawInputError, FitDidNotConverge):
            continue
        if result.settings.get("residual_rms_log") is not None:
            scatter.append(float(result.settings["residual_rms_log"]))
        out[group] = _prior_law(result, group, str(path))
    return out, (float(np.median(scatter)) if scatter else None), pooled_log_sd(repeated)
