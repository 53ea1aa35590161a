"""The "ceiling" verdict: does architecture X keep its advantage over the baseline as compute grows?

Both architectures' laws give the metric on the compute-optimal frontier (chinchilla: L*(C);
power_c: L(C)). The *advantage* of X is the frontier gap signed so that positive means X is
better (lower loss, or higher accuracy with higher_is_better). Each bootstrap replicate
resamples both sets of runs and yields one gap curve, so the interval is that of the
difference itself, not two overlapping intervals. From the gap curve come the crossover compute
(where the gap changes sign), the exponent difference, and a one-line verdict at the largest
measured compute and at a target compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api import LEVEL, FitResult, Prediction, fit, json_floats
from .bootstrap import DEFAULT_N_BOOT, percentile_interval
from .chinchilla import derived_scalars
from .data import Runs
from .errors import LawInputError

FRONTIER_FORMS = ("chinchilla", "power_c", "power_c_noE")
N_GRID = 200


@dataclass(frozen=True)
class Verdict:
    compute: float
    kind: str  # advantage_grows | advantage_shrinks | crosses_over | inconclusive | not_estimated
    gap: tuple[float, float, float]  # X's advantage at `compute`: value, lo, hi
    trend: tuple[float, float, float]  # advantage here minus at the smallest common compute
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "compute": self.compute,
            "kind": self.kind,
            "advantage": {
                "value": json_floats(self.gap[0]),
                "ci95": [json_floats(self.gap[1]), json_floats(self.gap[2])],
            },
            "change_since_smallest": {
                "value": json_floats(self.trend[0]),
                "ci95": [json_floats(self.trend[1]), json_floats(self.trend[2])],
            },
            "text": self.text,
        }


@dataclass(frozen=True)
class Comparison:
    name_x: str
    name_base: str
    metric: str
    higher_is_better: bool
    form: str
    compute: np.ndarray  # grid (G,)
    advantage: Prediction  # X's advantage over the grid; > 0 means X is better
    exponent_diff: dict[str, Prediction]  # X minus baseline
    crossover: dict[str, Any]
    verdicts: dict[str, Verdict]
    n_boot: int
    fits: dict[str, FitResult] = field(repr=False, default_factory=dict)

    @property
    def verdict(self) -> str:
        """The line for the target compute if one was given, else for the largest measured."""
        return self.verdicts.get("target", self.verdicts["largest_measured"]).text

    def to_json(self) -> dict[str, Any]:
        return {
            "x": self.name_x,
            "baseline": self.name_base,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "form": self.form,
            "advantage_definition": f"{'X - baseline' if self.higher_is_better else 'baseline - X'} "
            f"on the compute-optimal frontier; > 0 means {self.name_x} is better",
            "frontier": {"compute": json_floats(self.compute), "advantage": self.advantage.to_json()},
            "exponent_diff": {k: p.to_json() for k, p in self.exponent_diff.items()},
            "crossover": self.crossover,
            "verdicts": {k: v.to_json() for k, v in self.verdicts.items()},
            "verdict": self.verdict,
            "n_boot": self.n_boot,
            "health": {role: f.health.to_json() if f.health else None for role, f in self.fits.items()},
            "fits": {"x": self.fits["x"].to_json(), "baseline": self.fits["baseline"].to_json()}
            if self.fits
            else None,
        }


def _exponents(f: FitResult, public: np.ndarray) -> dict[str, np.ndarray]:
    if f.form == "chinchilla":
        d = derived_scalars(public)
        return {"frontier_exponent": d["frontier_exponent"], "a": d["a"]}
    return {"gamma": np.atleast_2d(public)[:, list(f.params).index("gamma")]}


def _first_crossing(log_c: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """log compute of the first sign change of each gap row (B, G), NaN where none."""
    s = np.sign(gap)
    change = (s[:, :-1] * s[:, 1:]) < 0
    out = np.full(gap.shape[0], np.nan)
    rows = np.flatnonzero(change.any(axis=1))
    i = change[rows].argmax(axis=1)
    g0, g1 = gap[rows, i], gap[rows, i + 1]
    out[rows] = log_c[i] + (log_c[i + 1] - log_c[i]) * g0 / (g0 - g1)
    return out


def _excludes_zero(lo: float, hi: float) -> int:
    return 1 if lo > 0 else (-1 if hi < 0 else 0)


def compare_fits(
    fit_x: FitResult,
    fit_base: FitResult,
    *,
    at_compute: float | None = None,
    name_x: str = "X",
    name_base: str = "baseline",
    level: float = LEVEL,
    n_grid: int = N_GRID,
) -> Comparison:
    """Compare two fits that carry bootstrap replicates (replicate i of each forms one pair)."""
    for f in (fit_x, fit_base):
        if f.form not in FRONTIER_FORMS:
            raise LawInputError(f"compare needs a frontier law ({', '.join(FRONTIER_FORMS)}); got '{f.form}'")
        if f.boot.shape[0] < 2:
            raise LawInputError(
                "compare needs bootstrap replicates in both fits (n_boot >= 2, or include_bootstrap)"
            )
    if (
        fit_x.form != fit_base.form
        or fit_x.metric != fit_base.metric
        or fit_x.higher_is_better != fit_base.higher_is_better
    ):
        raise LawInputError("compare needs both fits with the same form, metric and higher_is_better")
    n_boot = min(fit_x.boot.shape[0], fit_base.boot.shape[0])
    c_lo = max(fit_x.min_compute, fit_base.min_compute)
    c_meas = min(fit_x.max_compute, fit_base.max_compute)
    if not (np.isfinite(c_lo) and np.isfinite(c_meas) and c_meas > c_lo):
        raise LawInputError("compare needs overlapping compute ranges in the two sets of runs")
    target = c_meas if at_compute is None else float(at_compute)
    if not (np.isfinite(target) and target > 0):
        raise LawInputError(f"at_compute must be a positive number of FLOPs; got {at_compute}")
    # The grid spans the common measured range and the target; it holds both exactly.
    grid = np.unique(
        np.concatenate([np.geomspace(min(c_lo, target), max(c_meas, target), n_grid), [c_lo, c_meas, target]])
    )
    j_lo = int(np.searchsorted(grid, c_lo))  # trends are measured from the smallest common compute
    sign = 1.0 if fit_x.higher_is_better else -1.0

    def advantage(px: np.ndarray, pb: np.ndarray) -> np.ndarray:
        return sign * (fit_x.evaluate(px, compute=grid) - fit_base.evaluate(pb, compute=grid))

    point = advantage(fit_x.point, fit_base.point)[0]
    boot = advantage(fit_x.boot[:n_boot], fit_base.boot[:n_boot])
    lo, hi = percentile_interval(boot, level)
    adv = Prediction(point, lo, hi)

    ex_point, ex_x, ex_b = (
        _exponents(fit_x, fit_x.point),
        _exponents(fit_x, fit_x.boot[:n_boot]),
        _exponents(fit_base, fit_base.boot[:n_boot]),
    )
    ex_bp = _exponents(fit_base, fit_base.point)
    exponent_diff = {
        k: Prediction(
            np.atleast_1d(ex_point[k] - ex_bp[k]),
            *[np.atleast_1d(v) for v in percentile_interval(ex_x[k] - ex_b[k], level)],
        )
        for k in ex_point
    }

    log_grid = np.log(grid)
    cross_point = _first_crossing(log_grid, point[None])[0]
    cross_boot = _first_crossing(log_grid, boot)
    found = np.isfinite(cross_boot)
    cross_lo, cross_hi = percentile_interval(cross_boot[found], level) if found.any() else (np.nan, np.nan)
    crossover = {
        "compute": float(np.exp(cross_point)) if np.isfinite(cross_point) else None,
        "ci95": [float(np.exp(cross_lo)), float(np.exp(cross_hi))] if found.any() else None,
        "fraction_of_replicates": float(found.mean()),
        "range": [float(grid[0]), float(grid[-1])],
        "text": f"~{np.exp(cross_point):.2g} FLOPs" if np.isfinite(cross_point) else "none in range",
    }

    # A degenerate law's curve is not an estimate: no trend or crossover is stated from it.
    degenerate = {
        name: f.health.summary(1)
        for name, f in ((name_x, fit_x), (name_base, fit_base))
        if f.health is not None and f.health.is_degenerate
    }
    if degenerate:
        crossover["text"] = "not stated: " + "; ".join(f"{n}'s law is {why}" for n, why in degenerate.items())

    def verdict_at(c: float) -> Verdict:
        j = int(np.searchsorted(grid, c))
        g = (float(point[j]), float(lo[j]), float(hi[j]))
        t_lo, t_hi = percentile_interval(boot[:, j] - boot[:, j_lo], level)
        t = (float(point[j] - point[j_lo]), float(t_lo), float(t_hi))
        start, now = _excludes_zero(lo[j_lo], hi[j_lo]), _excludes_zero(g[1], g[2])
        crossed = np.isfinite(cross_point) and np.exp(cross_point) <= c
        pct = f"{level:.0%}"
        where = f"at {c:.2g} FLOPs"
        if not np.isfinite(g[0]):
            # A degenerate fit (e.g. too few sizes for its form) can evaluate to NaN/inf; say so plainly.
            state = (
                f"no estimate of the gap (a fit gives {g[0]} here: too few or too tiny runs for this form)"
            )
        else:
            significant = " (significant)" if _excludes_zero(g[1], g[2]) else ""
            state = (
                f"{name_x} {'ahead' if g[0] > 0 else 'behind'} by {abs(g[0]):.3g} {fit_x.metric}{significant} "
                f"({pct} CI of advantage {g[1]:+.3g} to {g[2]:+.3g})"
            )
        if degenerate:
            kind = "not_estimated"
            whose = "; ".join(f"{n}'s law is {why}" for n, why in degenerate.items())
            text = (
                f"{name_x} vs {name_base}: no trend or crossover stated ({whose}); {where} the fitted gap "
                f"{g[0]:+.3g} {fit_x.metric} is not an estimate"
            )
        elif crossed and start * now == -1:
            kind = "crosses_over"
            ci = crossover["ci95"]
            text = (
                f"{name_x} vs {name_base}: crosses over at ~{np.exp(cross_point):.2g} FLOPs"
                + (f" ({pct} CI {ci[0]:.2g}-{ci[1]:.2g})" if ci else "")
                + f"; {where} {state}"
            )
        elif _excludes_zero(t[1], t[2]) != 0:
            kind = "advantage_grows" if t[1] > 0 else "advantage_shrinks"
            # Say it the way a reader thinks of it: a trailing X whose advantage grows is catching up.
            if g[0] >= 0:
                trend = "advantage grows" if kind == "advantage_grows" else "advantage shrinks"
            else:
                trend = "gap to the baseline narrows" if kind == "advantage_grows" else "falls further behind"
            text = (
                f"{name_x} vs {name_base}: {trend} with compute ({t[0]:+.3g} {fit_x.metric} of advantage, "
                f"{pct} CI {t[1]:+.3g} to {t[2]:+.3g}, from {c_lo:.2g} to {c:.2g} FLOPs); {where} {state}"
            )
        else:
            # The trend is what is inconclusive; the gap itself may well be significant (said in ``state``).
            kind = "inconclusive"
            text = (
                f"{name_x} vs {name_base}: trend inconclusive at {pct} (whether the advantage grows or "
                f"shrinks with compute); {where} {state}"
            )
        return Verdict(float(c), kind, g, t, text)

    verdicts = {"largest_measured": verdict_at(c_meas)}
    if at_compute is not None:
        verdicts["target"] = verdict_at(target)
    return Comparison(
        name_x,
        name_base,
        fit_x.metric,
        fit_x.higher_is_better,
        fit_x.form,
        grid,
        adv,
        exponent_diff,
        crossover,
        verdicts,
        n_boot,
        {"x": fit_x, "baseline": fit_base},
    )


def compare(
    runs_x: Runs | Mapping[str, Any] | Any,
    runs_base: Runs | Mapping[str, Any] | Any,
    *,
    at_compute: float | None = None,
    form: str = "chinchilla",
    metric: str = "loss",
    metric_higher_is_better: bool = False,
    metric_max: float | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    n_jobs: int | None = None,
    name_x: str = "X",
    name_base: str = "baseline",
    **fit_kwargs: Any,
) -> Comparison:
    """Fit both sets of runs with the same law and compare X against the baseline.

    The baseline is resampled with `seed`, X with `seed + 1`; replicate i of each forms pair i,
    i.e. every replicate resamples both sets of runs together.
    """
    if form not in FRONTIER_FORMS:
        raise LawInputError(f"compare supports forms {FRONTIER_FORMS}; got '{form}'")
    if n_boot < 2:
        raise LawInputError("compare needs n_boot >= 2 for an interval of the difference")
    common = dict(
        form=form,
        metric=metric,
        higher_is_better=metric_higher_is_better,
        metric_max=metric_max,
        n_boot=n_boot,
        n_jobs=n_jobs,
        **fit_kwargs,
    )
    fit_base = fit(runs_base, seed=seed, **common)
    fit_x = fit(runs_x, seed=seed + 1, **common)
    return compare_fits(fit_x, fit_base, at_compute=at_compute, name_x=name_x, name_base=name_base)
