"""Everything a report shows, read from the store and fitted once: settings, laws, verdicts, problems.

Fits go through ``orchestrator.store.law_inputs.fit_cached`` with the arguments ``ceiling laws`` and
``ceiling compare`` use, so the report's numbers and verdict sentences are the CLI's (and come from the
store's fit cache when the CLI fitted them first). A piece that cannot be computed (too few sizes, no
baseline, no recall metric) is recorded with the reason instead of failing the whole report.
No plotting and no HTML here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from laws.isoflop_profiles import BudgetProfile, isoflop_profiles
from orchestrator.report.recall_points import RecallSeries, recall_series
from orchestrator.store import Store
from orchestrator.store.law_inputs import METRICS, LawRuns, comparable_fits, fit_cached, law_runs

FRONTIER_FORMS = ("chinchilla", "power_c", "power_c_noE")  # the forms `laws.compare_fits` accepts
ERROR_LINES = 3  # of a failed trial's traceback, the last lines say what went wrong


@dataclass(frozen=True)
class ReportSettings:
    metric: str = "val_loss"
    form: str = "auto"  # the richest form the runs identify, per architecture (laws.AUTO_ORDER)
    baseline: str = "transformer"
    at_compute: float | None = None
    n_boot: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class LawSection:
    """Per-architecture fits of the metric, the isoFLOP analysis and the comparison with the baseline."""

    runs: LawRuns
    fits: dict[str, Any] = field(default_factory=dict)  # group -> laws.FitResult
    missing: dict[str, str] = field(default_factory=dict)  # group -> why there is no fit
    isoflop_fits: dict[str, Any] = field(default_factory=dict)
    isoflop_missing: dict[str, str] = field(default_factory=dict)
    profiles: list[BudgetProfile] = field(default_factory=list)
    comparisons: dict[str, Any] = field(default_factory=dict)  # group -> laws.Comparison
    comparison_missing: dict[str, str] = field(default_factory=dict)  # group (or "*") -> why


@dataclass(frozen=True)
class ReportData:
    sweep: str
    spec: dict[str, Any]
    code_version: str | None
    trial_code_versions: list[str]
    corpus_fingerprints: list[str]
    created_at: str
    status_counts: dict[str, int]
    roles: dict[str, int]
    settings: ReportSettings
    laws: LawSection
    recall: list[RecallSeries]
    tuning: list[dict[str, Any]] | None  # None: this store keeps no tuning results
    problems: list[dict[str, str]]
    report_version: str
    efficiency: Any = None  # efficiency_section.EfficiencySection, or None: no efficiency measurements


def _noop(_: str) -> None:
    pass


def collect(
    store: Store, sweep: str, settings: ReportSettings, progress: Callable[[str], None] = _noop
) -> ReportData:
    """Read one sweep and fit its laws. ``progress`` receives one line per slow step (fits)."""
    from orchestrator.provenance import code_version

    record = store.get_sweep(sweep)
    if record is None:
        raise KeyError(sweep)
    trials = store.trials(sweep)
    progress(f"{len(trials)} trials in sweep {sweep!r}")
    runs = law_runs(store, sweep, metric=settings.metric)
    section = _laws(store, sweep, runs, settings, progress)
    roles: dict[str, int] = {}
    for trial in trials:
        role = getattr(trial, "role", None) or "main"
        roles[role] = roles.get(role, 0) + 1
    return ReportData(
        sweep=sweep,
        spec=dict(record.spec or {}),
        code_version=record.code_version,
        trial_code_versions=sorted({t.code_version for t in trials if t.code_version}),
        corpus_fingerprints=sorted({t.corpus_fingerprint for t in trials if t.corpus_fingerprint}),
        created_at=str(record.created_at),
        status_counts=store.status_counts(sweep),
        roles=roles,
        settings=settings,
        laws=section,
        recall=recall_series(trials),
        tuning=tuning_results(store, sweep),
        problems=problems(trials, runs),
        report_version=code_version(),
        efficiency=_efficiency(store, sweep, settings, progress),
    )


def _efficiency(store: Store, sweep: str, settings: ReportSettings, progress: Callable[[str], None]) -> Any:
    from orchestrator.report.efficiency_section import collect_efficiency

    progress("efficiency measurements")
    return collect_efficiency(
        store, sweep, baseline=settings.baseline, n_boot=settings.n_boot, seed=settings.seed
    )


def _laws(
    store: Store, sweep: str, runs: LawRuns, settings: ReportSettings, progress: Callable[[str], None]
) -> LawSection:

    section = LawSection(runs=runs)
    if not len(runs):
        section.missing["*"] = f"no finished runs with {settings.metric!r} yet"
        return section
    common = {"metric": settings.metric, "sweep": sweep, "n_boot": settings.n_boot, "seed": settings.seed}
    for group in runs.groups:
        progress(f"fitting {settings.form} for {group} ({runs.columns['group'].count(group)} runs)")
        try:
            # The same call as `ceiling laws / compare`: same cache key, same numbers.
            # The backtest (leave-largest-size/budget-out) is part of each fit's health in the report.
            section.fits[group] = fit_cached(
                store, runs.only(group), form=settings.form, group=group, backtest=True, **common
            )
        except Exception as exc:  # one bad fit must not lose the whole report
            section.missing[group] = _why(exc)
        try:
            section.isoflop_fits[group] = fit_cached(
                store, runs.only(group), form="isoflop", group=group, **common
            )
        except Exception as exc:  # one bad fit must not lose the whole report
            section.isoflop_missing[group] = _why(exc)
    higher = METRICS[settings.metric][0]
    section.profiles.extend(isoflop_profiles(runs.columns, settings.metric, higher_is_better=higher))
    _compare(store, sweep, section, settings, progress)
    return section


def _compare(
    store: Store, sweep: str, section: LawSection, settings: ReportSettings, progress: Callable[[str], None]
) -> None:
    """``laws.compare_fits`` per architecture against the baseline, exactly as ``ceiling compare`` calls it."""
    import laws

    groups = section.runs.groups
    baseline = section.fits.get(settings.baseline)
    if settings.baseline not in groups:
        section.comparison_missing["*"] = (
            f"the baseline {settings.baseline!r} has no finished runs; architectures with runs: {groups}"
        )
        return
    if baseline is None:
        section.comparison_missing["*"] = (
            f"the baseline {settings.baseline!r} has no fit (form {settings.form}): "
            f"{section.missing.get(settings.baseline, 'unknown reason')}"
        )
        return
    others = [g for g in groups if g != settings.baseline]
    if not others:
        section.comparison_missing["*"] = (
            f"only {settings.baseline!r} has runs; a comparison needs a second architecture"
        )
    for group in others:
        fit = section.fits.get(group)
        if fit is None:
            section.comparison_missing[group] = f"no fit (form {settings.form}): {section.missing.get(group)}"
            continue
        progress(f"comparing {group} with {settings.baseline}")
        try:
            fit_x, fit_base = comparable_fits(
                store, section.runs, group, settings.baseline, form=settings.form, sweep=sweep,
                n_boot=settings.n_boot, seed=settings.seed,
            )  # fmt: skip
            section.comparisons[group] = laws.compare_fits(
                fit_x, fit_base, at_compute=settings.at_compute, name_x=group, name_base=settings.baseline
            )
        except Exception as exc:  # as for fits: say why in the report
            section.comparison_missing[group] = _why(exc)


def _why(exc: Exception) -> str:
    """The user's input problems read as they are; anything else also names its type (a bug to report)."""
    import laws

    if isinstance(exc, (laws.LawInputError, laws.FitDidNotConverge)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def tuning_results(store: Store, sweep: str) -> list[dict[str, Any]] | None:
    """The sweep's learning-rate choices, or None where this store has no tuning support."""
    reader = getattr(store, "tuning_results", None)
    if reader is None:
        return None
    try:
        return list(reader(sweep))
    except Exception:  # an older store without the table: the report says "no tuning" instead of failing
        return None


def problems(trials: list[Any], runs: LawRuns) -> list[dict[str, str]]:
    """Trials that are not in the fits, with why: failed, diverged, no metric, or not finished yet."""
    out: list[dict[str, str]] = []
    excluded = {row["trial"]: row for row in runs.excluded}
    for trial in trials:
        error = (trial.error or "").strip()
        detail = " | ".join(line.strip() for line in error.splitlines()[-ERROR_LINES:] if line.strip())
        if trial.id in excluded:
            reason = excluded[trial.id]["reason"]
        elif trial.status in ("pending", "running"):
            reason = f"not finished ({trial.status})"
        else:
            continue
        out.append(
            {
                "trial": trial.id,
                "label": trial.label,
                "role": getattr(trial, "role", None) or "main",
                "size": f"{trial.params_non_embedding:,}",
                "tokens": f"{trial.tokens:,}",
                "status": trial.status,
                "reason": reason,
                "error": detail,
            }
        )
    return out
