"""Multi-start L-BFGS for the log-sum-exp forms, and the per-replicate fit the bootstrap runs.

The published recipe runs L-BFGS from every point of a start grid (4500 for Chinchilla) and
keeps the best. Scoring the whole grid in one vectorised pass and polishing only the best
`top_k` distinct starts finds the same optimum (checked in bench/laws_bootstrap.py) at a small
fraction of the cost. Bootstrap replicates are small perturbations of the full data, so they are
warm-started from the few distinct local optima the full fit found instead of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .errors import FitDidNotConverge
from .forms import FORMS, LseForm
from .huber import lse_objective, lse_objective_many
from .threads import single_threaded_blas

# Tight tolerances: the summed Huber objective is ~1e-3 at the optimum, so scipy's defaults stop
# early and the fitted coefficients then depend on the start. Cost is a few more iterations.
LBFGS_OPTIONS = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12}
THETA_LIMIT = 1e3  # |theta| beyond this means a coefficient or exponent ran off to infinity
STATUS_OK, STATUS_LINE_SEARCH = 0, 2


@dataclass(frozen=True)
class Solution:
    theta: np.ndarray
    objective: float
    converged: bool
    message: str


def solve_from(
    form: LseForm,
    starts: np.ndarray,
    log_x: np.ndarray,
    log_y: np.ndarray,
    weights: np.ndarray,
    delta: float,
) -> list[Solution]:
    """One L-BFGS run per start row; each judged converged or not (see `_judge`)."""
    out = []
    for start in starts.reshape(-1, starts.shape[-1]):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = minimize(
                lse_objective,
                start,
                args=(log_x, log_y, weights, delta, form.has_E),
                jac=True,
                method="L-BFGS-B",
                options=LBFGS_OPTIONS,
            )
        out.append(_judge(res, weights))
    return out


def _judge(res, weights: np.ndarray) -> Solution:
    theta = np.asarray(res.x, dtype=float)
    finite = bool(np.isfinite(res.fun)) and bool(np.all(np.isfinite(theta)))
    bounded = finite and float(np.max(np.abs(theta))) < THETA_LIMIT
    # Status 2 (line search cannot improve) is how L-BFGS ends at a kink of the near-L1 Huber
    # objective; accept it only where the gradient is negligible next to the objective's scale.
    stalled_at_optimum = (
        res.status == STATUS_LINE_SEARCH
        and finite
        and (float(np.max(np.abs(res.jac))) <= 1e-6 * max(1.0, float(weights.sum())))
    )
    converged = bounded and (res.status == STATUS_OK or stalled_at_optimum)
    return Solution(theta, float(res.fun) if finite else np.inf, converged, str(res.message))


def best_of(solutions: list[Solution]) -> Solution | None:
    ok = [s for s in solutions if s.converged]
    return min(ok, key=lambda s: s.objective) if ok else None


def distinct_optima(solutions: list[Solution], limit: int, tol: float = 1e-3) -> np.ndarray:
    """Up to `limit` converged optima, best first, dropping near-duplicates (same basin)."""
    kept: list[np.ndarray] = []
    for s in sorted((s for s in solutions if s.converged), key=lambda s: s.objective):
        if all(np.max(np.abs(s.theta - k)) > tol for k in kept):
            kept.append(s.theta)
        if len(kept) == limit:
            break
    return np.array(kept)


def grid_starts(
    form: LseForm,
    log_x: np.ndarray,
    log_y: np.ndarray,
    weights: np.ndarray,
    delta: float,
    top_k: int,
) -> np.ndarray:
    """The `top_k` best points of the form's start grid, scored in one vectorised pass."""
    grid = form.start_grid()
    if top_k >= grid.shape[0]:
        return grid
    scores = lse_objective_many(grid, log_x, log_y, weights, delta, form.has_E)
    scores = np.where(np.isfinite(scores), scores, np.inf)
    return grid[np.argsort(scores, kind="stable")[:top_k]]


def fit_lse(
    form: LseForm,
    log_x: np.ndarray,
    log_y: np.ndarray,
    weights: np.ndarray,
    delta: float,
    top_k: int | None = None,
    exhaustive: bool = False,
    n_warm: int = 3,
) -> tuple[Solution, np.ndarray]:
    """Full-data fit: (best solution, distinct optima to warm-start bootstrap replicates).

    top_k: grid starts to polish (None: the form's default); exhaustive=True polishes every
    grid point, the published procedure (slow; used to check the shortcut)."""
    k = form.top_k if top_k is None else top_k
    starts = form.start_grid() if exhaustive else grid_starts(form, log_x, log_y, weights, delta, k)
    with single_threaded_blas():
        solutions = solve_from(form, starts, log_x, log_y, weights, delta)
    best = best_of(solutions)
    if best is None:
        messages = sorted({s.message for s in solutions})
        raise FitDidNotConverge(
            f"form '{form.name}': none of {len(solutions)} L-BFGS starts converged to a finite optimum "
            f"({'; '.join(messages[:3])}). The data may not determine this form: try a simpler form "
            "(e.g. without E) or more runs spanning a wider range."
        )
    return best, distinct_optima(solutions, n_warm)


# A replicate polishes the full-data optimum, then any other full-data basin whose *unpolished*
# objective on the replicate is within this factor of that result. On the Epoch data the first
# start wins 199 of 200 replicates, so screening saves two thirds of the work at no cost in
# robustness: a basin that could win is still polished.
SCREEN_FACTOR = 1.2


@dataclass(frozen=True)
class LseReplicateFit:
    """Fit one bootstrap replicate per weight row; picklable so a process pool can run it."""

    form_name: str
    log_x: np.ndarray
    log_y: np.ndarray
    delta: float
    warm_starts: np.ndarray  # distinct full-data optima, best first

    def fit_one(self, weights: np.ndarray) -> Solution | None:
        form = FORMS[self.form_name]
        args = (self.log_x, self.log_y, weights, self.delta)
        found = solve_from(form, self.warm_starts[:1], *args)
        if len(self.warm_starts) > 1:
            bound = found[0].objective if found[0].converged else np.inf
            raw = lse_objective_many(self.warm_starts[1:], *args, form.has_E)
            found += solve_from(form, self.warm_starts[1:][raw < SCREEN_FACTOR * bound], *args)
        return best_of(found)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        form = FORMS[self.form_name]
        out = np.full((weights.shape[0], len(form.param_names)), np.nan)
        with single_threaded_blas():
            for i, w in enumerate(weights):
                best = self.fit_one(w)
                if best is not None:
                    out[i] = form.to_public(best.theta)
        return out
