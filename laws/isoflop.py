"""Approach 2: isoFLOP profiles.

Runs are grouped into compute budgets; within each budget the metric is fitted by a parabola in
log N, whose vertex is that budget's optimal size N* (and, by a straight line of log D on log N
inside the budget, D*). Power laws N* = k_N C^a and D* = k_D C^b through the optima are
least squares in log-log space (as in Hoffmann et al. 2022 and Porian et al. 2024).

Everything is vectorised over bootstrap replicates: a replicate only changes row weights, and a
weighted quadratic fit is a 3x3 solve, so `IsoflopReplicate` handles all replicates at once.
Replicates resample runs within each budget (stratified) so every profile keeps its shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LawInputError
from .power import loglinear_fit

PARAM_NAMES = ("a", "k_N", "b", "k_D")  # N* = k_N C^a, D* = k_D C^b
MIN_SIZES_PER_BUDGET = 3  # a parabola needs three distinct sizes


def budget_ids(compute: np.ndarray, rtol: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Cluster rows whose compute agrees within `rtol` into budgets.

    Returns (budget index per row, budget compute = geometric mean of its rows), budgets sorted
    by compute. 6ND rarely hits a budget exactly, hence a tolerance rather than equality.
    """
    log_c = np.log(np.asarray(compute, dtype=float))
    order = np.argsort(log_c, kind="stable")
    ids = np.empty(log_c.size, dtype=int)
    current, start = 0, log_c[order[0]]
    for i in order:
        if log_c[i] - start > np.log1p(rtol):
            current, start = current + 1, log_c[i]
        ids[i] = current
    centres = np.array([np.exp(log_c[ids == k].mean()) for k in range(current + 1)])
    return ids, centres


def _weighted_polyfit(x: np.ndarray, y: np.ndarray, w: np.ndarray, degree: int) -> np.ndarray:
    """Coefficients (B, degree+1), lowest power first, of weighted LS fits; w is (B, n)."""
    design = np.stack([x**p for p in range(degree + 1)], axis=1)  # (n, d)
    xtwx = np.einsum("bn,ni,nj->bij", w, design, design)
    xtwy = np.einsum("bn,ni,n->bi", w, design, y)
    coef = np.full(xtwy.shape, np.nan)
    ok = np.linalg.cond(xtwx) < 1e12
    if ok.any():
        coef[ok] = np.linalg.solve(xtwx[ok], xtwy[ok][..., None])[..., 0]
    return coef


@dataclass(frozen=True)
class IsoflopReplicate:
    """Per weight row: parabola vertex per budget, then the power laws through the vertices."""

    log_n: np.ndarray
    log_d: np.ndarray
    y: np.ndarray
    budget_of_row: np.ndarray
    log_c_budget: np.ndarray

    def optima(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log N*, log D*, y*) per replicate and budget, (B, K); NaN where a budget has no
        interior minimum (curvature <= 0) in that replicate."""
        weights = np.atleast_2d(weights)
        n_b, n_k = weights.shape[0], self.log_c_budget.size
        log_n_opt, log_d_opt, y_opt = (np.full((n_b, n_k), np.nan) for _ in range(3))
        for k in range(n_k):
            rows = self.budget_of_row == k
            x0 = self.log_n[rows].mean()  # centring keeps the normal equations well conditioned
            x = self.log_n[rows] - x0
            w = weights[:, rows]
            c0, c1, c2 = _weighted_polyfit(x, self.y[rows], w, 2).T
            with np.errstate(invalid="ignore", divide="ignore"):
                vertex = np.where(c2 > 0, -c1 / (2 * c2), np.nan)
            d0, d1 = _weighted_polyfit(x, self.log_d[rows], w, 1).T
            log_n_opt[:, k] = x0 + vertex
            log_d_opt[:, k] = d0 + d1 * vertex
            y_opt[:, k] = c0 + c1 * vertex + c2 * vertex**2
        return log_n_opt, log_d_opt, y_opt

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        log_n_opt, log_d_opt, _ = self.optima(weights)
        i_n, s_n = loglinear_fit(self.log_c_budget, log_n_opt, 1.0)
        i_d, s_d = loglinear_fit(self.log_c_budget, log_d_opt, 1.0)
        return np.stack([s_n, np.exp(i_n), s_d, np.exp(i_d)], axis=1)


def _nearest_to_minimum(log_n: np.ndarray, y: np.ndarray, ids: np.ndarray, nearest: int) -> np.ndarray:
    """Rows among the `nearest` sizes closest (in log N) to each budget's best run.

    Far from the optimum an isoFLOP profile is not a parabola (it is steeper on the small-model
    side), and the far points then pull the vertex; Porian et al. fit near the minimum too."""
    keep = np.zeros(ids.size, dtype=bool)
    for k in np.unique(ids):
        rows = np.flatnonzero(ids == k)
        centre = log_n[rows[np.argmin(y[rows])]]
        keep[rows[np.argsort(np.abs(log_n[rows] - centre), kind="stable")[:nearest]]] = True
    return keep


def build_isoflop(
    params: np.ndarray,
    tokens: np.ndarray,
    compute: np.ndarray,
    y: np.ndarray,
    rtol: float = 0.05,
    nearest: int | None = None,
) -> tuple[IsoflopReplicate, np.ndarray, list[str]]:
    """Group into budgets, keep the `nearest` points around each budget's best run (None: all,
    as Hoffmann et al.), drop budgets that cannot hold a parabola.

    Returns (task, mask of rows used, notes)."""
    if nearest is not None and nearest < MIN_SIZES_PER_BUDGET:
        raise LawInputError(f"isoflop_nearest must be >= {MIN_SIZES_PER_BUDGET} (points per parabola)")
    ids, centres = budget_ids(compute, rtol)
    used = (
        np.ones(ids.size, dtype=bool)
        if nearest is None
        else _nearest_to_minimum(np.log(params), y, ids, nearest)
    )
    notes: list[str] = []
    keep_budget = np.zeros(centres.size, dtype=bool)
    for k in range(centres.size):
        sizes = np.unique(np.round(np.log(params[(ids == k) & used]), 9)).size
        keep_budget[k] = sizes >= MIN_SIZES_PER_BUDGET
        if not keep_budget[k]:
            notes.append(f"budget {centres[k]:.3g} FLOPs dropped: {sizes} distinct sizes, a parabola needs 3")
    if keep_budget.sum() < 2:
        raise LawInputError(
            f"isoflop needs at least 2 compute budgets with >= {MIN_SIZES_PER_BUDGET} model sizes each; "
            f"found {int(keep_budget.sum())} (budgets are rows whose compute agrees within {rtol:.0%})"
        )
    rows = keep_budget[ids] & used
    renumber = np.cumsum(keep_budget) - 1
    task = IsoflopReplicate(
        np.log(params[rows]),
        np.log(tokens[rows]),
        y[rows],
        renumber[ids[rows]],
        np.log(centres[keep_budget]),
    )
    return task, rows, notes


def optimal(public: np.ndarray, compute: np.ndarray) -> dict[str, np.ndarray]:
    """N*, D*, D*/N* at each compute from (a, k_N, b, k_D) rows: each (B, n)."""
    p = np.atleast_2d(public)
    c = np.asarray(compute, dtype=float).reshape(1, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        n_opt = p[:, 1, None] * c ** p[:, 0, None]
        d_opt = p[:, 3, None] * c ** p[:, 2, None]
    return {"N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt}
