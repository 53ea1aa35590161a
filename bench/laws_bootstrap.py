"""Benchmark: Chinchilla approach 3 with 1000 bootstrap resamples on Epoch's 240 points.

Compares `laws.fit(..., n_boot=1000)` (vectorised start-grid scoring, analytic gradients,
warm-started replicates, a process pool over cores) against a straightforward implementation:
per resample, scipy L-BFGS-B with finite-difference gradients from every one of the 4500
published grid starts, one start at a time. The naive fit is far too slow to run 1000 times, so
it is timed on a few resamples and a strided subset of starts, and extrapolated (per-start time
x 4500 starts x 1000 resamples); the output says so.

Also checks that the shortcuts lose nothing: warm-started replicate fits against fresh
24-start grid fits on the same resamples, and (with --exhaustive, ~1 min more) the full-data fit
from the top 24 starts against polishing all 4500 starts.

Timings are the best of --repeats runs: the machine may be shared, and the minimum is the least
disturbed measurement. Usage: python bench/laws_bootstrap.py [--exhaustive] [--n-boot 1000].
Prints a table, then one JSON line with the headline figures (ratios first).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import laws  # noqa: E402
from laws.bootstrap import available_cores, run_weights  # noqa: E402
from laws.forms import CHINCHILLA  # noqa: E402
from laws.huber import huber  # noqa: E402
from laws.solver import LseReplicateFit, fit_lse  # noqa: E402
from laws.threads import single_threaded_blas  # noqa: E402

DELTA = 1e-3


def load_epoch() -> dict[str, np.ndarray]:
    shared = Path(os.environ.get("CEILING_SHARED_DIR", Path(__file__).resolve().parents[1] / ".." / "shared"))
    path = shared / "reference" / "epoch_chinchilla" / "svg_extracted_data.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.argsort(loss, kind="stable")[:-5]  # Epoch drops the 5 highest-loss points
    return {"params": n[keep], "tokens": c[keep] / (6 * n[keep]), "loss": loss[keep]}


def naive_objective(theta, log_n, log_d, log_l, weights):
    """Epoch-style objective, no gradient: scipy differences it numerically."""
    a, b, e, alpha, beta = theta
    pred = np.logaddexp.reduce([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], axis=0)
    return float(np.sum(weights * huber(pred - log_l, DELTA)))


def naive_fit(starts, log_n, log_d, log_l, weights):
    from scipy.optimize import minimize

    best = np.inf
    for start in starts:
        res = minimize(naive_objective, start, args=(log_n, log_d, log_l, weights), method="L-BFGS-B")
        best = min(best, res.fun)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per configuration (best kept)")
    parser.add_argument("--exhaustive", action="store_true", help="also polish all 4500 starts (~1 min)")
    args = parser.parse_args()
    data = load_epoch()
    cores = available_cores()
    rows: list[tuple[str, str]] = []

    def timed(n_jobs: int | None) -> tuple[float, laws.FitResult]:
        best, result = np.inf, None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = laws.fit(data, "chinchilla", n_boot=args.n_boot, seed=0, n_jobs=n_jobs)
            best = min(best, time.perf_counter() - t0)
        return best, result

    wall, fit = timed(None)  # all cores (process pool), start-up included
    rows.append(
        (f"laws.fit, {args.n_boot} resamples, {cores} cores (pool start-up included)", f"{wall:.2f} s")
    )
    serial, _ = timed(1)
    rows.append((f"laws.fit, {args.n_boot} resamples, 1 process", f"{serial:.2f} s"))

    # naive: Epoch grid, (our data layout,) numerical gradients, one start at a time
    log_n, log_d, log_l = np.log(data["params"]), np.log(data["tokens"]), np.log(data["loss"])
    grid = CHINCHILLA.start_grid()  # internal order (a, b, alpha, beta, e)
    epoch_order = grid[:, [0, 1, 4, 2, 3]]  # naive objective takes (a, b, e, alpha, beta)
    subset = epoch_order[:: max(1, grid.shape[0] // 40)]
    n_naive = 3
    weights = run_weights(np.arange(log_l.size), n_naive, seed=123)
    with single_threaded_blas():
        t0 = time.perf_counter()
        for w in weights:
            naive_fit(subset, log_n, log_d, log_l, w)
        per_start = (time.perf_counter() - t0) / (n_naive * len(subset))
    naive_per_resample = per_start * grid.shape[0]
    naive_total = naive_per_resample * args.n_boot
    rows.append(
        (
            f"naive: timed {n_naive} resamples x {len(subset)} starts, extrapolated",
            f"{per_start * 1e3:.1f} ms/start -> {naive_per_resample:.0f} s/resample",
        )
    )
    rows.append((f"naive, {args.n_boot} resamples (extrapolated, 1 core)", f"{naive_total:.3g} s"))

    # does the shortcut lose anything?
    lx = CHINCHILLA.log_features({"params": data["params"], "tokens": data["tokens"]})
    ones = np.ones(log_l.size)
    best_top, warm = fit_lse(CHINCHILLA, lx, log_l, ones, DELTA)
    gap_exhaustive = None
    if args.exhaustive:
        t0 = time.perf_counter()
        best_all, _ = fit_lse(CHINCHILLA, lx, log_l, ones, DELTA, exhaustive=True)
        t_all = time.perf_counter() - t0
        gap_exhaustive = best_top.objective - best_all.objective
        rows.append(("exhaustive 4500 starts (analytic grad), full data", f"{t_all:.1f} s"))
        rows.append(("objective: top-24 minus exhaustive", f"{gap_exhaustive:.2e}"))
    task = LseReplicateFit("chinchilla", lx, log_l, DELTA, warm)
    check_w = run_weights(np.arange(log_l.size), 10, seed=7)
    worse = 0
    with single_threaded_blas():
        for w in check_w:
            warm_obj = task.fit_one(w).objective
            fresh, _ = fit_lse(CHINCHILLA, lx, log_l, w, DELTA)
            worse += warm_obj > fresh.objective * (1 + 1e-9) + 1e-15
    rows.append(("replicates where warm start lost to a fresh 24-start fit", f"{worse} of {len(check_w)}"))

    ci = fit.ci()
    for name in ("E", "A", "alpha", "B", "beta"):
        rows.append((f"{name} [95% CI]", f"{fit.params[name]:.4g} [{ci[name][0]:.4g}, {ci[name][1]:.4g}]"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(
        json.dumps(
            {
                "speedup_vs_naive": round(naive_total / wall, 1),
                "speedup_vs_serial": round(serial / wall, 2),
                "wall_s_1000_resamples": round(wall, 2) if args.n_boot == 1000 else None,
                "wall_s": round(wall, 2),
                "serial_s": round(serial, 2),
                "naive_s_extrapolated": round(naive_total, 1),
                "naive_extrapolated_from": f"{n_naive} resamples x {len(subset)} of 4500 starts",
                "n_boot": args.n_boot,
                "cores": cores,
                "n_boot_failed": fit.settings.get("n_boot_failed"),
                "objective_gap_vs_exhaustive": gap_exhaustive,
                "warm_start_lost": worse,
                "alpha": round(fit.params["alpha"], 4),
                "beta": round(fit.params["beta"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
