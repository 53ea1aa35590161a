"""How far a fitted law can be trusted: `healthy`, `weak` or `degenerate`, with the reasons.

A fit is judged from what it already carries: the bootstrap distribution of its parameters, how
many of the replicates failed, how many distinct sizes and budgets it saw, its residuals on the
data and (when computed) its leave-largest-out backtest. Every reason is a sentence a user can act
on; every threshold is a named constant with the argument for it.

- `degenerate`: the data do not identify the law. Its numbers are not estimates: predictions
  and comparisons from it must say so, and `compare` states no trend or crossover from it.
- `weak`: identified, but with a warning that matters for extrapolation (an unidentified floor E,
  a poor fit to the data, a failed backtest, many failed replicates).
- `healthy`: none of the above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEALTHY, WEAK, DEGENERATE = "healthy", "weak", "degenerate"
_RANK = {HEALTHY: 0, WEAK: 1, DEGENERATE: 2}

# An exponent whose 95% interval spans more than a factor of 10 is not measured: over the 1-3
# decades of scale a study covers, that is the difference between a law that flattens and one that
# keeps falling steeply. Published fits pin exponents to within ~20% (Epoch: alpha 0.35 [0.32, 0.37]).
MAX_EXPONENT_SPAN = 10.0
# An exponent interval reaching below this is indistinguishable from a flat term (the "exponent
# crosses zero" case): the term then only duplicates the constant E.
MIN_EXPONENT = 0.01
# The start grids search exponents in [0, 2] (Chinchilla's published grid); a point estimate pushed
# past this bound is the optimiser fitting noise with a near step function, not a power law.
MAX_EXPONENT = 2.5
# The floor E and the size of each power term (taken at the geometric centre of the data, where a
# coefficient is least correlated with its exponent) are judged on the same one-decade span; an
# unidentified E makes a law interpolate well and extrapolate badly, hence weak, not degenerate.
MAX_SCALE_SPAN = 10.0
# E below this fraction of the smallest observed value means the fit put the floor at zero: the
# data show no flattening, so the asymptote is not measured.
MIN_FLOOR_FRACTION = 1e-3
# Failed bootstrap replicates: a few are the optimiser's bad luck; past 5% the interval is biased
# toward the replicates that happened to converge; past 20% it describes little.
WEAK_FAILED_FRACTION = 0.05
DEGENERATE_FAILED_FRACTION = 0.20
# Robust residual scale in log(metric) (1.4826 x median |residual|, the RMS for normal noise, blind
# to the few outliers the Huber objective also ignores): seed-to-seed noise of final losses is
# ~0.5-1% at small scale, so a scale above 2% means the form misses the data's shape.
MAX_RESIDUAL_RMS = 0.02
# Leave-largest-out: a law that misses the next size up by more than 5% cannot be trusted one
# decade further; the same when most held-out runs fall outside the 95% band.
MAX_BACKTEST_ERROR = 0.05

EXPONENT_NAMES = frozenset({"alpha", "beta", "gamma", "a", "b"})
FLOOR_NAMES = frozenset({"E"})


@dataclass(frozen=True)
class FitHealth:
    status: str
    reasons: tuple[str, ...] = ()
    checks: dict[str, Any] = field(default_factory=dict)  # the numbers behind the reasons
    backtest: dict[str, Any] | None = None

    @property
    def is_degenerate(self) -> bool:
        return self.status == DEGENERATE

    def summary(self, limit: int = 2) -> str:
        """`healthy`, or e.g. `degenerate: beta's 95% CI spans 58x; ...` (the first reasons)."""
        if not self.reasons:
            return self.status
        shown = "; ".join(self.reasons[:limit])
        more = f" (+{len(self.reasons) - limit} more)" if len(self.reasons) > limit else ""
        return f"{self.status}: {shown}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "checks": self.checks,
            "backtest": self.backtest,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FitHealth:
        return cls(
            status=str(obj["status"]),
            reasons=tuple(obj.get("reasons", ())),
            checks=dict(obj.get("checks", {})),
            backtest=obj.get("backtest"),
        )


class _Findings:
    """Collects (severity, reason) pairs; the worst severity is the status."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, severity: str, reason: str) -> None:
        self.items.append((severity, reason))

    def status(self) -> str:
        return max((s for s, _ in self.items), key=_RANK.__getitem__, default=HEALTHY)

    def reasons(self) -> tuple[str, ...]:
        # Worst first, so the first reason shown is the one that set the status.
        ordered = sorted(self.items, key=lambda item: -_RANK[item[0]])
        return tuple(reason for _, reason in ordered)


def _span(lo: float, hi: float) -> float:
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0:
        return float("inf")
    return float(hi / lo)


def _fmt_span(span: float) -> str:
    return "an unbounded range" if not np.isfinite(span) else f"{span:.3g}x"


def assess(
    *,
    form: str,
    params: Mapping[str, float],
    boot: np.ndarray,
    settings: Mapping[str, Any],
    backtest: Mapping[str, Any] | None = None,
) -> FitHealth:
    """Judge one fit. `settings` carries what the fit measured on its data (n_boot_failed,
    residual_rms_log, distinct, needed_distinct, term_centres); missing entries are skipped."""
    found = _Findings()
    checks: dict[str, Any] = {}
    names = list(params)
    _check_distinct(found, checks, settings)
    if boot.size == 0:
        found.add(
            WEAK, "no bootstrap (n_boot=0): the parameters have no intervals, so identification is unchecked"
        )
    else:
        _check_failed(found, checks, boot, settings)
        _check_intervals(found, checks, names, params, boot, settings)
    _check_bounds(found, names, params, settings)
    rms = settings.get("residual_rms_log")
    if rms is not None and np.isfinite(rms):
        checks["residual_rms_log"] = float(rms)
        if rms > MAX_RESIDUAL_RMS:
            found.add(
                WEAK,
                f"residual scale {rms:.1%} in log metric (> {MAX_RESIDUAL_RMS:.0%}): the {form} form misses "
                "the data's shape",
            )
    if backtest:
        _check_backtest(found, backtest)
    return FitHealth(found.status(), found.reasons(), checks, dict(backtest) if backtest else None)


def _check_distinct(found: _Findings, checks: dict[str, Any], settings: Mapping[str, Any]) -> None:
    distinct = settings.get("distinct") or {}
    needed = settings.get("needed_distinct") or {}
    checks["distinct"] = dict(distinct)
    for column, need in needed.items():
        have = distinct.get(column)
        if have is not None and have < need:
            found.add(
                DEGENERATE,
                f"only {have} distinct {_COLUMN_WORDS.get(column, column)}; this form needs >= {need} "
                f"to separate its terms (add {_COLUMN_WORDS.get(column, column)})",
            )


_COLUMN_WORDS = {"params": "sizes", "tokens": "token budgets", "compute": "compute budgets"}


def _check_failed(
    found: _Findings, checks: dict[str, Any], boot: np.ndarray, settings: Mapping[str, Any]
) -> None:
    n_boot = boot.shape[0]
    failed = int(settings.get("n_boot_failed", int(np.isnan(boot).any(axis=1).sum())))
    share = failed / n_boot if n_boot else 0.0
    checks["failed_replicates"] = failed
    if share > DEGENERATE_FAILED_FRACTION:
        found.add(DEGENERATE, f"{failed} of {n_boot} bootstrap replicates failed to converge")
    elif share > WEAK_FAILED_FRACTION:
        found.add(WEAK, f"{failed} of {n_boot} bootstrap replicates failed to converge")


def _check_intervals(
    found: _Findings,
    checks: dict[str, Any],
    names: list[str],
    params: Mapping[str, float],
    boot: np.ndarray,
    settings: Mapping[str, Any],
) -> None:
    from .bootstrap import percentile_interval

    lo, hi = percentile_interval(boot, 0.95)
    spans: dict[str, float | None] = {}
    for i, name in enumerate(names):
        span = _span(float(lo[i]), float(hi[i]))
        spans[name] = span if np.isfinite(span) else None
        interval = f"[{lo[i]:.3g}, {hi[i]:.3g}]"
        if name in EXPONENT_NAMES:
            if not np.isfinite(lo[i]) or lo[i] < MIN_EXPONENT:
                found.add(DEGENERATE, f"{name}'s 95% CI {interval} reaches zero: the term is not identified")
            elif span > MAX_EXPONENT_SPAN:
                found.add(
                    DEGENERATE,
                    f"{name}'s 95% CI {interval} spans {_fmt_span(span)} (> {MAX_EXPONENT_SPAN:g}x)",
                )
        elif name in FLOOR_NAMES and span > MAX_SCALE_SPAN:
            found.add(
                WEAK,
                f"the floor {name}'s 95% CI {interval} spans {_fmt_span(span)}: the data do not show "
                "where the metric flattens, so extrapolation is uncertain",
            )
    # A coefficient is judged by its term's value at the data's geometric centre (its exponent and
    # it trade off along the data, so the coefficient alone can span decades while the law is fixed).
    for coef, centre_values in _term_centres(names, boot, settings).items():
        t_lo, t_hi = (
            np.nanpercentile(centre_values, [2.5, 97.5])
            if np.isfinite(centre_values).any()
            else (np.nan, np.nan)
        )
        span = _span(float(t_lo), float(t_hi))
        spans[f"{coef}_term_at_centre"] = span if np.isfinite(span) else None
        if span > MAX_SCALE_SPAN:
            found.add(
                WEAK,
                f"the {coef} term's size at the data's centre spans {_fmt_span(span)} across replicates",
            )
    checks["ci_span"] = spans


def _term_centres(names: list[str], boot: np.ndarray, settings: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """coef -> its term coef * x_centre^-k per replicate (for forms that recorded term_centres)."""
    out: dict[str, np.ndarray] = {}
    for term in settings.get("term_centres") or []:
        coef, exponent, log_centre, scale = term["coef"], term["exponent"], term["log_centre"], term["scale"]
        if coef not in names or exponent not in names:
            continue
        c, k = boot[:, names.index(coef)], boot[:, names.index(exponent)]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out[coef] = np.exp(k * (np.log(c) - log_centre)) if scale else c * np.exp(-k * log_centre)
    return out


def _check_bounds(
    found: _Findings, names: list[str], params: Mapping[str, float], settings: Mapping[str, Any]
) -> None:
    for name in names:
        value = float(params[name])
        if name in ("alpha", "beta", "gamma") and value > MAX_EXPONENT:
            found.add(DEGENERATE, f"{name} = {value:.3g} is past the searched range (<= {MAX_EXPONENT:g})")
    floor = params.get("E")
    smallest = settings.get("min_target")
    if floor is not None and smallest is not None and floor < MIN_FLOOR_FRACTION * smallest:
        found.add(WEAK, f"E = {floor:.3g} sits at its bound (zero): the data show no floor")


def _check_backtest(found: _Findings, backtest: Mapping[str, Any]) -> None:
    for key, result in backtest.items():
        if not isinstance(result, Mapping) or "abs_rel_error_mean" not in result:
            continue
        what = _HOLDOUT_WORDS.get(key, key)
        err = float(result["abs_rel_error_mean"])
        if err > MAX_BACKTEST_ERROR:
            found.add(WEAK, f"{what}: mean error {err:.1%} on the held-out runs (> {MAX_BACKTEST_ERROR:.0%})")
        inside = result.get("inside_band")
        if inside is not None and result.get("n_test_runs") and inside * 2 < result["n_test_runs"]:
            found.add(WEAK, f"{what}: {inside} of {result['n_test_runs']} held-out runs inside the 95% band")


_HOLDOUT_WORDS = {"largest_size": "leave-largest-size-out", "largest_budget": "leave-largest-budget-out"}
