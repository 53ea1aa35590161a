"""Log-linear power laws y = k * x^s fitted by (weighted) least squares in log-log space.

This is how optima are turned into allocation exponents (N* ~ C^a) in approaches 1 and 2, and
it is what Porian et al. report ("a plain OLS of log n_star on log flops"). It is closed form and
vectorised over bootstrap replicates, so thousands of replicates cost one array expression.
The saturating power laws with an irreducible term (L(N) = E + A/N^alpha, ...) are
log-sum-exp forms: see forms.FORMS (`power_n`, `power_d`, `power_c`, and `*_noE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import LawInputError


def loglinear_fit(log_x: np.ndarray, log_y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) of log_y = intercept + slope * log_x for each weight row.

    log_x, log_y: (..., n), NaN entries ignored (weight 0); weights broadcast to (B, n).
    Rows with fewer than two distinct weighted x values give NaN.
    """
    log_x = np.asarray(log_x, dtype=float)
    log_y = np.asarray(log_y, dtype=float)
    x, y = np.broadcast_arrays(log_x, log_y)
    w = np.broadcast_to(np.asarray(weights, dtype=float), np.broadcast_shapes(np.shape(weights), x.shape))
    ok = np.isfinite(x) & np.isfinite(y) & (w > 0)
    w = np.where(ok, w, 0.0)
    x = np.where(ok, x, 0.0)
    y = np.where(ok, y, 0.0)
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * x).sum(-1) / sw
        my = (w * y).sum(-1) / sw
        dx = np.where(ok, x - mx[..., None], 0.0)
        sxx = (w * dx * dx).sum(-1)
        sxy = (w * dx * (y - my[..., None])).sum(-1)
        slope = np.where(sxx > 1e-12 * np.maximum(sw, 1.0), sxy / sxx, np.nan)
    return my - slope * mx, slope


@dataclass(frozen=True)
class PowerLawFit:
    """y = coef * x^exponent, by OLS in log-log space, with a bootstrap over the points."""

    exponent: float
    coef: float
    ci95: dict[str, tuple[float, float]]
    n_points: int

    def to_json(self) -> dict[str, Any]:
        return {
            "form": "power_law_ols",
            "params": {"exponent": self.exponent, "coef": self.coef},
            "ci95": {k: list(v) for k, v in self.ci95.items()},
            "n_points": self.n_points,
        }


def fit_power_law(x: Any, y: Any, *, n_boot: int = 1000, seed: int = 0) -> PowerLawFit:
    """OLS power law through points that are independent units (e.g. one optimum per budget):
    the bootstrap resamples points. Used for N*(C) from stored or computed optima."""
    from .bootstrap import percentile_interval, run_weights

    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.size != y.size:
        raise LawInputError(f"x and y differ in length ({x.size} vs {y.size})")
    bad = ~(np.isfinite(x) & np.isfinite(y)) | (x <= 0) | (y <= 0)
    if bad.any():
        raise LawInputError(
            f"power law needs finite, positive x and y; bad at rows {np.flatnonzero(bad)[:5].tolist()}"
        )
    if np.unique(x).size < 3:
        raise LawInputError(
            f"power law with an interval needs >= 3 distinct x values; got {np.unique(x).size}"
        )
    intercept, slope = loglinear_fit(np.log(x), np.log(y), np.ones(x.size))
    ci: dict[str, tuple[float, float]] = {"exponent": (np.nan, np.nan), "coef": (np.nan, np.nan)}
    if n_boot:
        w = run_weights(np.arange(x.size), n_boot, seed)
        b_int, b_slope = loglinear_fit(np.log(x), np.log(y), w)
        lo, hi = percentile_interval(np.stack([b_slope, np.exp(b_int)], axis=1))
        ci = {"exponent": (float(lo[0]), float(hi[0])), "coef": (float(lo[1]), float(hi[1]))}
    return PowerLawFit(float(slope), float(np.exp(intercept)), ci, int(x.size))
