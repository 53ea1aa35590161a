"""Approach 1: the lower envelope of the metric against compute over whole training curves.

Each run's curve (its checkpoints) is interpolated in log compute onto a shared log-spaced grid;
at every grid point the envelope is the best run there, and that run's size and tokens are the
compute-optimal N* and D* (Hoffmann et al. 2022, approach 1). Power laws N* = k_N C^a and
D* = k_D C^b are least squares through the envelope points. A bootstrap replicate is the same
envelope over the runs it drew, so one (runs x grid) matrix built once serves all replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LawInputError
from .power import loglinear_fit

N_GRID = 256


@dataclass(frozen=True)
class EnvelopeReplicate:
    y_grid: np.ndarray  # (R, G) metric interpolated per run, +inf outside the run's range
    log_n_run: np.ndarray  # (R,)
    log_d_grid: np.ndarray  # (R, G) log tokens interpolated per run
    log_c_grid: np.ndarray  # (G,)
    run_of_row: np.ndarray  # (rows,) run index, to turn row weights into run weights

    def frontier(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y envelope, log N*, log D*) per replicate and grid point, (B, G); NaN where no run
        drawn in that replicate covers the grid point or the best run is an edge size."""
        weights = np.atleast_2d(weights)
        n_runs = self.log_n_run.size
        run_w = np.zeros((weights.shape[0], n_runs))
        run_w[:, self.run_of_row] = weights  # all rows of a run carry the run's weight
        masked = np.where(run_w[:, :, None] > 0, self.y_grid[None], np.inf)  # (B, R, G)
        best = masked.argmin(axis=1)  # (B, G)
        y_env = np.take_along_axis(masked, best[:, None, :], axis=1)[:, 0]
        # Where the best run is the smallest or largest size drawn, the true optimum may lie
        # outside the sizes trained: such points would flatten the N*(C) slope, so skip them.
        drawn_n = np.where(run_w > 0, self.log_n_run[None, :], np.nan)
        at_edge = (self.log_n_run[best] <= np.nanmin(drawn_n, axis=1)[:, None]) | (
            self.log_n_run[best] >= np.nanmax(drawn_n, axis=1)[:, None]
        )
        covered = np.isfinite(y_env) & ~at_edge
        log_n = np.where(covered, self.log_n_run[best], np.nan)
        log_d = np.where(covered, np.take_along_axis(self.log_d_grid, best, axis=0), np.nan)
        return np.where(covered, y_env, np.nan), log_n, log_d

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        out = []
        for lo in range(0, weights.shape[0], 64):  # bound the (B, R, G) temporary
            _, log_n, log_d = self.frontier(weights[lo : lo + 64])
            i_n, s_n = loglinear_fit(self.log_c_grid, log_n, 1.0)
            i_d, s_d = loglinear_fit(self.log_c_grid, log_d, 1.0)
            out.append(np.stack([s_n, np.exp(i_n), s_d, np.exp(i_d)], axis=1))
        return np.concatenate(out, axis=0)


def build_envelope(
    run_of_row: np.ndarray,
    params: np.ndarray,
    tokens: np.ndarray,
    compute: np.ndarray,
    y: np.ndarray,
    n_grid: int = N_GRID,
) -> EnvelopeReplicate:
    n_runs = int(run_of_row.max()) + 1
    counts = np.bincount(run_of_row, minlength=n_runs)
    if (counts < 2).any():
        raise LawInputError(
            f"envelope (approach 1) needs training curves: >= 2 checkpoints per run; "
            f"{int((counts < 2).sum())} of {n_runs} runs have one row (use form='chinchilla' or 'isoflop' "
            "for final results only)"
        )
    if np.unique(params).size < 3:
        raise LawInputError("envelope needs runs of at least 3 model sizes (edge sizes are not optima)")
    log_c = np.log(compute)
    grid = np.linspace(log_c.min(), log_c.max(), n_grid)
    y_grid = np.full((n_runs, n_grid), np.inf)
    log_d_grid = np.full((n_runs, n_grid), np.nan)
    log_n_run = np.empty(n_runs)
    for r in range(n_runs):
        rows = np.flatnonzero(run_of_row == r)
        rows = rows[np.argsort(log_c[rows], kind="stable")]
        if np.unique(params[rows]).size != 1:  # one size per run: N* is read off the run
            raise LawInputError(
                f"run {r}: rows of one run must share 'params'; got {np.unique(params[rows])}"
            )
        log_n_run[r] = np.log(params[rows[0]])
        inside = (grid >= log_c[rows[0]]) & (grid <= log_c[rows[-1]])
        y_grid[r, inside] = np.interp(grid[inside], log_c[rows], y[rows])
        log_d_grid[r, inside] = np.interp(grid[inside], log_c[rows], np.log(tokens[rows]))
    return EnvelopeReplicate(y_grid, log_n_run, log_d_grid, grid, run_of_row)
