"""Design power: will a planned study identify its law? Answered by simulation, before any compute.

For a design (the (N, D) law points of one architecture, and how many seeds each has), losses are
drawn from a reference law at those points, with multiplicative noise at the seed-to-seed level,
and fitted exactly as `ceiling laws` will fit them (Chinchilla's L(N, D), whole-run bootstrap,
health). Over many simulated studies this gives the expected 95% CI width of each exponent, the
share of studies whose fit comes out degenerate (or weak), and the expected leave-largest-size-out
error. When a design is likely degenerate, candidate changes (another budget from a cooldown
branch, another size, another seed) are simulated too, and the cheapest that fixes it is named.

The reference law: either a law fitted to an earlier sweep (`--prior`), or Epoch AI's refit of
Chinchilla (Besiroglu et al. 2024: alpha 0.3478, beta 0.3658) rescaled to the planned range: its
exponents are kept and E and the two coefficients are set so the loss runs from `loss_range[1]`
at the smallest (N, D) to `loss_range[0]` at the largest, with both terms equal at the smallest
point (they are of the same order at a compute-optimal point of Epoch's law).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .api import fit
from .bootstrap import percentile_interval
from .errors import FitDidNotConverge, LawInputError
from .health import DEGENERATE, HEALTHY, WEAK
from .validation import leave_largest_out

EPOCH_EXPONENTS = {"alpha": 0.3478, "beta": 0.3658}  # Besiroglu et al. 2024, Table 1 (their refit)
# Seed-to-seed standard deviation of log final loss assumed when no seeded sweep measured it: the
# spread of final val loss across data orders at small scale is ~0.3-1%; 0.5% sits in the middle.
DEFAULT_NOISE = 0.005
# A design is flagged when more than this share of simulated studies gives a degenerate law.
MAX_DEGENERATE_SHARE = 0.2
DEFAULT_SIMULATIONS = 40  # studies simulated per design: the shares are then good to ~+-7%
DEFAULT_BOOT = 40  # bootstrap replicates per simulated study: enough for the health verdict's spans
CHEAP_SIMULATIONS = 16  # per candidate change: enough to tell ~0% from ~50% degenerate


@dataclass(frozen=True)
class Design:
    """The law points of one architecture: arrays of equal length (one entry per run, seeds
    included), and what a run of each point costs (FLOPs it adds, trunk-aware if branches)."""

    params: np.ndarray
    tokens: np.ndarray
    flops: float  # what the design spends
    branches: bool = False  # budgets are cooldown branches of one trunk per size
    cooldown_frac: float = 0.2

    @property
    def sizes(self) -> np.ndarray:
        return np.unique(self.params)

    @property
    def budgets(self) -> np.ndarray:
        return np.unique(self.tokens)

    @property
    def seeds(self) -> int:
        return max(1, round(self.params.size / max(1, self.sizes.size * self.budgets.size)))


@dataclass(frozen=True)
class ReferenceLaw:
    E: float
    A: float
    alpha: float
    B: float
    beta: float
    source: str
    # True for a law rescaled to each design (Epoch's): designs of the same shape then have the
    # same power even when their absolute sizes differ, so they can share one simulation.
    scale_free: bool = False

    def loss(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        return self.E + self.A * n**-self.alpha + self.B * d**-self.beta

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("E", "A", "alpha", "B", "beta", "source")}


def epoch_reference(design: Design, loss_range: tuple[float, float]) -> ReferenceLaw:
    """Epoch's exponents with E, A, B set so the design's losses span `loss_range` (low, high)."""
    low, high = loss_range
    if not 0 < low < high:
        raise LawInputError(f"loss_range must be (low, high) with 0 < low < high; got {loss_range}")
    alpha, beta = EPOCH_EXPONENTS["alpha"], EPOCH_EXPONENTS["beta"]
    n0, n1 = float(design.params.min()), float(design.params.max())
    d0, d1 = float(design.tokens.min()), float(design.tokens.max())
    shrink = (n1 / n0) ** -alpha + (
        d1 / d0
    ) ** -beta  # both terms at the largest point, per unit at the smallest
    term = (high - low) / (2.0 - shrink)  # each term's value at the smallest point
    floor = low - term * shrink
    if floor <= 0:  # the range asks for more fall than a floor >= 0 allows: keep a small floor
        floor = 0.1 * low
        term = (high - floor) / 2.0
    return ReferenceLaw(
        E=floor,
        A=term * n0**alpha,
        alpha=alpha,
        B=term * d0**beta,
        beta=beta,
        source=f"Epoch's Chinchilla exponents (alpha {alpha}, beta {beta}) rescaled to losses {low:g}-{high:g}",
        scale_free=True,
    )


def law_from_fit(params: dict[str, float], source: str) -> ReferenceLaw:
    return ReferenceLaw(
        E=params["E"], A=params["A"], alpha=params["alpha"], B=params["B"], beta=params["beta"], source=source
    )


@dataclass(frozen=True)
class PowerResult:
    design: Design
    law: ReferenceLaw
    noise: float
    n_sim: int
    shares: dict[str, float]  # healthy / weak / degenerate / failed
    exponent_ci: dict[str, dict[str, float]]  # name -> median lo, hi, span of the 95% CI
    backtest_error: float  # median leave-largest-size-out mean error
    top_reasons: list[str]
    suggestions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def degenerate_share(self) -> float:
        return self.shares[DEGENERATE] + self.shares["failed"]

    @property
    def likely_degenerate(self) -> bool:
        return self.degenerate_share > MAX_DEGENERATE_SHARE

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": [float(x) for x in self.design.sizes],
            "budgets": [float(x) for x in self.design.budgets],
            "seeds": self.design.seeds,
            "reference_law": self.law.to_json(),
            "noise": self.noise,
            "n_simulations": self.n_sim,
            "shares": self.shares,
            "exponent_ci95": self.exponent_ci,
            "backtest_largest_size_error": self.backtest_error if np.isfinite(self.backtest_error) else None,
            "top_reasons": self.top_reasons,
            "likely_degenerate": self.likely_degenerate,
            "suggestions": self.suggestions,
        }


def _one_study(design: Design, law: ReferenceLaw, noise: float, seed: int, n_boot: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    loss = law.loss(design.params, design.tokens) * np.exp(rng.normal(0.0, noise, design.params.size))
    runs = {"params": design.params, "tokens": design.tokens, "loss": loss}
    try:
        result = fit(runs, "chinchilla", n_boot=n_boot, seed=seed, n_jobs=1, top_k=8)
    except (LawInputError, FitDidNotConverge) as exc:
        return {"status": "failed", "reason": str(exc)}
    lo, hi = percentile_interval(result.boot, 0.95)
    names = list(result.params)
    out: dict[str, Any] = {
        "status": result.health.status,
        "reason": result.health.reasons[0] if result.health.reasons else "",
        "ci": {k: (float(lo[names.index(k)]), float(hi[names.index(k)])) for k in ("alpha", "beta")},
    }
    try:
        held = leave_largest_out(runs, "chinchilla", by="params", top_k=8)
        out["backtest"] = held["abs_rel_error_mean"]
    except (LawInputError, FitDidNotConverge):
        out["backtest"] = float("nan")
    return out


def simulate(
    design: Design,
    law: ReferenceLaw,
    *,
    noise: float = DEFAULT_NOISE,
    n_sim: int = DEFAULT_SIMULATIONS,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    suggest: bool = True,
    progress: Callable[[str], None] | None = None,
    n_jobs: int | None = None,
) -> PowerResult:
    """Simulate `n_sim` studies of this design; with `suggest`, also the candidate fixes when it is
    likely degenerate (or weak in most studies)."""
    studies = _map_studies(design, law, noise, [seed * 100_003 + i for i in range(n_sim)], n_boot, n_jobs)
    counts = {s: 0 for s in (HEALTHY, WEAK, DEGENERATE, "failed")}
    reasons: dict[str, int] = {}
    for study in studies:
        counts[study["status"]] += 1
        if study["status"] != HEALTHY and study["reason"]:
            key = _reason_kind(study["reason"])
            reasons[key] = reasons.get(key, 0) + 1
    exponent_ci = {}
    for name in ("alpha", "beta"):
        pairs = np.array([s["ci"][name] for s in studies if "ci" in s], dtype=float).reshape(-1, 2)
        if pairs.size:
            lo, hi = np.nanmedian(pairs, axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                span = (
                    float(np.nanmedian(pairs[:, 1] / pairs[:, 0]))
                    if (pairs[:, 0] > 0).any()
                    else float("inf")
                )
            exponent_ci[name] = {
                "lo": float(lo),
                "hi": float(hi),
                "median_span": span,
                "true": getattr(law, name),
            }
    backtests = np.array([s.get("backtest", np.nan) for s in studies], dtype=float)
    result = PowerResult(
        design=design,
        law=law,
        noise=noise,
        n_sim=n_sim,
        shares={k: v / n_sim for k, v in counts.items()},
        exponent_ci=exponent_ci,
        backtest_error=float(np.nanmedian(backtests)) if np.isfinite(backtests).any() else float("nan"),
        top_reasons=[f"{k} ({v} of {n_sim})" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3]],
    )
    if suggest and (result.likely_degenerate or result.shares[HEALTHY] < 0.5):
        if progress:
            progress("design power: simulating candidate changes")
        result = replace(
            result, suggestions=suggest_changes(design, law, noise=noise, n_boot=n_boot, seed=seed)
        )
    return result


def _reason_kind(reason: str) -> str:
    """Group reasons by what they say, not by their numbers ("beta's 95% CI [..] spans 12x")."""
    if "95% CI" in reason:
        return reason.split(" [")[0] + " too wide"
    return reason


def candidate_designs(design: Design) -> list[tuple[str, Design]]:
    """Cheap changes a user can make: a budget or size on either side, or a second seed.
    Each candidate's cost is the FLOPs it adds (a budget below the trunk's end costs only its
    cooldown when budgets are branches)."""
    sizes, budgets, seeds = design.sizes, design.budgets, design.seeds
    out: list[tuple[str, Design]] = []

    def grid(new_sizes: np.ndarray, new_budgets: np.ndarray, new_seeds: int, added: float) -> Design:
        n, d = np.meshgrid(new_sizes, new_budgets)
        n, d = np.repeat(n.ravel(), new_seeds), np.repeat(d.ravel(), new_seeds)
        return replace(design, params=n, tokens=d, flops=design.flops + added)

    run_tokens = budgets.max() if design.branches else budgets.sum()
    lower_budget = budgets.min() / 2
    cost = 6 * sizes.sum() * lower_budget * (design.cooldown_frac if design.branches else 1.0) * seeds
    out.append(
        (
            f"add a budget of {lower_budget:.3g} tokens"
            + (" (a cooldown branch)" if design.branches else ""),
            grid(sizes, np.append(budgets, lower_budget), seeds, cost),
        )
    )
    upper_budget = budgets.max() * 2
    cost = 6 * sizes.sum() * (upper_budget - (budgets.max() if design.branches else 0)) * seeds
    out.append(
        (
            f"add a budget of {upper_budget:.3g} tokens",
            grid(sizes, np.append(budgets, upper_budget), seeds, cost),
        )
    )
    lower_size = sizes.min() / 2
    cost = 6 * lower_size * run_tokens * seeds
    out.append(
        (
            f"add a size of {lower_size:.3g} parameters",
            grid(np.append(sizes, lower_size), budgets, seeds, cost),
        )
    )
    upper_size = sizes.max() * 2
    cost = 6 * upper_size * run_tokens * seeds
    out.append(
        (
            f"add a size of {upper_size:.3g} parameters",
            grid(np.append(sizes, upper_size), budgets, seeds, cost),
        )
    )
    out.append(
        (f"run {seeds + 1} seeds instead of {seeds}", grid(sizes, budgets, seeds + 1, design.flops / seeds))
    )
    return out


def suggest_changes(
    design: Design,
    law: ReferenceLaw,
    *,
    noise: float,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    n_jobs: int | None = None,
    n_sim: int = CHEAP_SIMULATIONS,
) -> list[dict[str, Any]]:
    """Candidate changes, cheapest first, each simulated until one fixes the design (the
    recommendation, `fixes` true); dearer candidates after it are listed as not simulated."""
    rows: list[dict[str, Any]] = []
    found = False
    for text, candidate in sorted(candidate_designs(design), key=lambda c: c[1].flops):
        row: dict[str, Any] = {
            "change": text,
            "added_flops": float(candidate.flops - design.flops),
            "added_fraction": float((candidate.flops - design.flops) / design.flops)
            if design.flops
            else None,
        }
        if not found:
            result = simulate(
                candidate,
                law,
                noise=noise,
                n_sim=CHEAP_SIMULATIONS,
                n_boot=n_boot,
                seed=seed + 1,
                suggest=False,
                n_jobs=n_jobs,
            )
            found = not result.likely_degenerate
            row.update(
                degenerate_share=result.degenerate_share, healthy_share=result.shares[HEALTHY], fixes=found
            )
        else:
            row.update(fixes=None, note="not simulated: a cheaper change already fixes the design")
        rows.append(row)
    return rows


def _map_studies(
    design: Design, law: ReferenceLaw, noise: float, seeds: list[int], n_boot: int, n_jobs: int | None
) -> list[dict[str, Any]]:
    """Studies are independent: spread them over processes ('spawn', as the bootstrap does)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .bootstrap import available_cores

    jobs = available_cores() if n_jobs is None else max(1, n_jobs)
    jobs = min(jobs, len(seeds))
    if jobs <= 1:
        return [_one_study(design, law, noise, s, n_boot) for s in seeds]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        return list(
            pool.map(
                _one_study,
                [design] * len(seeds),
                [law] * len(seeds),
                [noise] * len(seeds),
                seeds,
                [n_boot] * len(seeds),
                chunksize=max(1, len(seeds) // (2 * jobs)),
            )
        )


def simulate_many(
    designs: dict[str, Design],
    law_for: Callable[[str, Design], ReferenceLaw],
    *,
    noise: float = DEFAULT_NOISE,
    n_sim: int = DEFAULT_SIMULATIONS,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    suggest: bool = True,
    progress: Callable[[str], None] | None = None,
    n_jobs: int | None = None,
) -> dict[str, PowerResult]:
    """One simulation per distinct (design, law): architectures whose planned grids agree (see
    `_alike`) share the result, so a 12-architecture ladder costs one or two simulations."""
    done: list[tuple[Design, ReferenceLaw, PowerResult]] = []
    out = {}
    for name, design in designs.items():
        law = law_for(name, design)
        match = next((r for d, lw, r in done if _alike(d, lw, design, law)), None)
        if match is None:
            if progress:
                progress(f"design power: simulating {n_sim} studies of {name}'s design")
            match = simulate(
                design,
                law,
                noise=noise,
                n_sim=n_sim,
                n_boot=n_boot,
                seed=seed,
                suggest=suggest,
                progress=progress,
                n_jobs=n_jobs,
            )
            done.append((design, law, match))
        out[name] = match
    return out


# Architectures realise a target size to within ~20% at the smallest sizes (a layer's width moves in
# steps). A design's power depends on the shape of its grid (how many points, over what ratios);
# with a law rescaled to each design (Epoch's) two grids whose log positions agree to ALIKE_LOG_TOL
# have the same power to well within the simulation's own +-7%. A law fixed in absolute terms (a
# prior sweep's fit) needs the same absolute points: to 5%.
ALIKE_LOG_TOL = 0.25
ALIKE_ABS_RTOL = 0.05


def _alike(a: Design, law_a: ReferenceLaw, b: Design, law_b: ReferenceLaw) -> bool:
    if a.branches != b.branches or a.params.size != b.params.size:
        return False
    if a.sizes.size != b.sizes.size or a.budgets.size != b.budgets.size:
        return False
    if law_a.scale_free and law_b.scale_free and law_a.source == law_b.source:
        shapes = (
            (np.log(a.sizes / a.sizes[0]), np.log(b.sizes / b.sizes[0])),
            (np.log(a.budgets / a.budgets[0]), np.log(b.budgets / b.budgets[0])),
        )
        return all(bool(np.all(np.abs(x - y) <= ALIKE_LOG_TOL)) for x, y in shapes)
    if law_a != law_b:
        return False
    pairs = ((a.sizes, b.sizes), (a.budgets, b.budgets))
    return all(bool(np.all(np.abs(np.log(x / y)) <= np.log1p(ALIKE_ABS_RTOL))) for x, y in pairs)


def design_from_points(
    params: Sequence[float], tokens: Sequence[float], *, branches: bool = False, cooldown_frac: float = 0.2
) -> Design:
    """A Design from one architecture's planned law points (one entry per run)."""
    n = np.asarray(params, dtype=float)
    d = np.asarray(tokens, dtype=float)
    if n.size == 0 or n.size != d.size:
        raise LawInputError("a design needs matching, non-empty params and tokens")
    sizes = np.unique(n)
    if branches:
        # One trunk per size to the largest budget, plus each budget's cooldown.
        flops = float(sum(6 * s * (d[n == s].max() + cooldown_frac * d[n == s].sum()) for s in sizes))
    else:
        flops = float(np.sum(6 * n * d))
    return Design(n, d, flops, branches, cooldown_frac)
