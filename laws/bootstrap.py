"""Bootstrap over whole runs: resampling, a process pool over cores, percentile intervals.

Resampling is done up front in the parent from one seed, as integer draw counts per run; a row's
weight is its run's count. The fit functions treat weights as row multiplicities, so a replicate
never copies data and checkpoints of one run always travel together. Because the draws do not
depend on how replicates are split across workers, results are identical for any n_jobs.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

DEFAULT_N_BOOT = 1000
AUTO_PARALLEL_MIN_REPLICATES = 200  # below this, starting worker processes costs more than it saves


def run_weights(
    run_of_row: np.ndarray,
    n_boot: int,
    seed: int | np.random.SeedSequence,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """(n_boot, n_rows) row weights from resampling runs with replacement.

    `strata` (one label per run) resamples within each stratum, keeping its size: isoFLOP
    budgets must each keep enough runs for their parabola.
    """
    rng = np.random.default_rng(seed)
    n_runs = int(run_of_row.max()) + 1
    counts = np.zeros((n_boot, n_runs))
    labels = np.zeros(n_runs, dtype=int) if strata is None else np.asarray(strata)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        draws = rng.integers(0, members.size, size=(n_boot, members.size))
        for b in range(n_boot):
            counts[b, members] = np.bincount(draws[b], minlength=members.size)
    return counts[:, run_of_row]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_jobs(n_jobs: int | None, n_boot: int) -> int:
    if n_jobs is None:
        return available_cores() if n_boot >= AUTO_PARALLEL_MIN_REPLICATES else 1
    return max(1, min(int(n_jobs), n_boot))


def map_replicates(task: Callable[[np.ndarray], np.ndarray], weights: np.ndarray, n_jobs: int) -> np.ndarray:
    """task(weights chunk (b, n)) -> (b, P); run serially or in a spawn-safe process pool.

    Chunks (a few per worker) amortise pickling the task; 'spawn' avoids forking a parent that
    may hold threads (Ray, Streamlit) and behaves the same on Linux, macOS and Windows.
    """
    if weights.shape[0] == 0:
        return np.empty((0, 0))
    if n_jobs <= 1:
        return task(weights)
    chunks = np.array_split(weights, min(weights.shape[0], 4 * n_jobs))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
        return np.concatenate(list(pool.map(task, chunks)), axis=0)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, ignoring failed (NaN) replicates."""
    tail = 100.0 * (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=float)
    if samples.shape[0] == 0:
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
        lo = np.nanpercentile(samples, tail, axis=0)
        hi = np.nanpercentile(samples, 100.0 - tail, axis=0)
    return lo, hi
