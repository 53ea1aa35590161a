"""The public entry points: `fit`, `fit_groups`, and the `FitResult` they return.

A FitResult holds the full-data estimate and the bootstrap distribution of the public
parameters; every prediction and derived quantity is computed from both by the same function,
so each number comes with a percentile interval. `to_json()` writes the Fit JSON contract of
DESIGN.md; `from_json()` restores a result (with intervals if the bootstrap was included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import chinchilla, isoflop
from .bootstrap import DEFAULT_N_BOOT, map_replicates, percentile_interval, resolve_jobs, run_weights
from .data import DEFAULT_COMPUTE_FACTOR, Runs, as_runs
from .envelope import build_envelope
from .errors import FitDidNotConverge, LawInputError
from .forms import FORMS, LseForm, resolve_form
from .health import FitHealth, assess
from .solver import LseReplicateFit, fit_lse

OPTIMA_FORMS = ("isoflop", "envelope")  # laws of N*(C), D*(C) rather than of the metric
ALL_FORMS = tuple(FORMS) + OPTIMA_FORMS
MAX_FAILED_FRACTION = 0.5  # more failed replicates than this and the intervals mean nothing
LEVEL = 0.95


@dataclass(frozen=True)
class Prediction:
    """Point estimate and percentile interval, arrays over the query points."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def to_json(self) -> dict[str, list[float]]:
        return {"value": json_floats(self.value), "ci95": [json_floats(self.lo), json_floats(self.hi)]}


def json_floats(a: Any) -> Any:
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if np.isfinite(v) else None
    return [json_floats(v) for v in arr]


def _interval(point: np.ndarray, boot: np.ndarray, level: float) -> Prediction:
    lo, hi = percentile_interval(boot, level)
    return Prediction(np.asarray(point, dtype=float), lo, hi)


@dataclass(frozen=True)
class FitResult:
    form: str
    params: dict[str, float]
    boot: np.ndarray  # (n_boot, P) public parameters per replicate; NaN rows = failed replicate
    runs: tuple[str, ...]
    metric: str = "loss"
    higher_is_better: bool = False
    metric_max: float | None = None
    group: str | None = None
    max_compute: float = float("nan")
    min_compute: float = float("nan")
    at_compute: tuple[float, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    health: FitHealth | None = None  # set by `fit`; `with_backtest` adds the backtest to it

    # ----- health ---------------------------------------------------------------------------
    def assessed(self, backtest: Mapping[str, Any] | None = None) -> FitResult:
        """This fit with its health judged (again), optionally with a leave-largest-out backtest."""
        health = assess(
            form=self.form, params=self.params, boot=self.boot, settings=self.settings, backtest=backtest
        )
        return replace(self, health=health)

    def with_backtest(self, backtest: Mapping[str, Any]) -> FitResult:
        return self.assessed(backtest)

    @property
    def status(self) -> str:
        return self.health.status if self.health else "unknown"

    # ----- bookkeeping ---------------------------------------------------------------------
    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def point(self) -> np.ndarray:
        return np.array([list(self.params.values())])

    @property
    def compute_factor(self) -> float:
        return float(self.settings.get("compute_factor", DEFAULT_COMPUTE_FACTOR))

    def _to_metric(self, y: np.ndarray) -> np.ndarray:
        """Fits are of a decreasing positive quantity; map back to the user's metric (before
        taking percentiles, so lo <= hi holds for higher-is-better metrics too)."""
        return self.metric_max - y if self.higher_is_better else y

    # ----- law evaluation, vectorised: public params (B, P) -> values (B, n) ---------------
    def evaluate(
        self, public: np.ndarray, *, params: Any = None, tokens: Any = None, compute: Any = None
    ) -> np.ndarray:
        """The metric (in the user's units) for each row of public parameters."""
        if self.form in OPTIMA_FORMS:
            raise LawInputError(f"form '{self.form}' is a law of N*(C) and D*(C); use .optimal(compute=...)")
        if self.form == "chinchilla" and compute is not None and params is None and tokens is None:
            y = chinchilla.optimal(public, compute, self.compute_factor)["predicted"]
        else:
            y = FORMS[self.form].evaluate(public, {"params": params, "tokens": tokens, "compute": compute})
        return self._to_metric(y)

    def _optimal_batch(self, public: np.ndarray, compute: Any) -> dict[str, np.ndarray]:
        if self.form == "chinchilla":
            out = chinchilla.optimal(public, compute, self.compute_factor)
            return {**out, "predicted": self._to_metric(out["predicted"])}
        if self.form in OPTIMA_FORMS:
            return isoflop.optimal(public, compute)
        raise LawInputError(
            f"form '{self.form}' has no compute-optimal allocation; fit 'chinchilla' or 'isoflop'"
        )

    def _derived_batch(self, public: np.ndarray) -> dict[str, np.ndarray]:
        return chinchilla.derived_scalars(public) if self.form == "chinchilla" else {}

    # ----- public queries -------------------------------------------------------------------
    def predict(
        self, *, params: Any = None, tokens: Any = None, compute: Any = None, level: float = LEVEL
    ) -> Prediction:
        """The metric at the given points, with a bootstrap percentile interval.

        chinchilla: params= and tokens=, or compute= alone for the compute-optimal frontier;
        power_n: params=; power_d: tokens=; power_c: compute=."""
        point = self.evaluate(self.point, params=params, tokens=tokens, compute=compute)[0]
        boot = (
            self.evaluate(self.boot, params=params, tokens=tokens, compute=compute)
            if self.boot.size
            else np.empty((0, point.size))
        )
        return _interval(point, boot, level)

    def optimal(self, compute: Any, level: float = LEVEL) -> dict[str, Prediction]:
        """Compute-optimal N*, D*, tokens per parameter (and the metric there, chinchilla)."""
        point = self._optimal_batch(self.point, compute)
        boot = self._optimal_batch(self.boot, compute) if self.boot.size else None
        return {
            key: _interval(value[0], boot[key] if boot else np.empty((0, value.shape[1])), level)
            for key, value in point.items()
        }

    def ci(self, level: float = LEVEL) -> dict[str, tuple[float, float]]:
        """Percentile intervals of every parameter and scalar derived quantity (NaN without
        a bootstrap)."""
        if not self.boot.size:
            return {n: (np.nan, np.nan) for n in self.params}
        lo, hi = percentile_interval(self.boot, level)
        out = {n: (float(a), float(b)) for n, a, b in zip(self.params, lo, hi, strict=True)}
        for key, samples in self._derived_batch(self.boot).items():
            a, b = percentile_interval(samples, level)
            out[key] = (float(a), float(b))
        return out

    def _at_compute(self, compute: float) -> dict[str, Prediction]:
        """What this form says about one compute budget: the optimal allocation where it has
        one, else the predicted metric where it is a law of compute, else nothing."""
        if self.form == "chinchilla" or self.form in OPTIMA_FORMS:
            return self.optimal([compute])
        if "compute" in FORMS[self.form].features:
            return {"predicted": self.predict(compute=[compute])}
        return {}

    def derived(self) -> dict[str, Any]:
        """Scalar derived quantities, and per-compute predictions at the largest measured
        compute and every requested `at_compute`, each with its interval."""
        out: dict[str, Any] = {k: float(v[0]) for k, v in self._derived_batch(self.point).items()}
        rows = []
        for c in sorted({c for c in (self.max_compute, *self.at_compute) if np.isfinite(c)}):
            preds = self._at_compute(c)
            if preds:
                row: dict[str, Any] = {"compute": c, **{k: json_floats(p.value[0]) for k, p in preds.items()}}
                row["ci95"] = {k: [json_floats(p.lo[0]), json_floats(p.hi[0])] for k, p in preds.items()}
                rows.append(row)
        if rows:
            out["at_compute"] = rows
        return out

    def to_json(self, include_bootstrap: bool = False) -> dict[str, Any]:
        """The Fit JSON contract; `include_bootstrap` adds the replicate parameters so that
        `from_json` can still give intervals for new predictions."""
        obj: dict[str, Any] = {
            "form": self.form,
            "params": {k: json_floats(v) for k, v in self.params.items()},
            "ci95": {k: [json_floats(a), json_floats(b)] for k, (a, b) in self.ci().items()},
            "n_runs": self.n_runs,
            "runs": list(self.runs),
            "derived": self.derived(),
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "metric_max": self.metric_max,
            "group": self.group,
            "min_compute": self.min_compute,
            "max_compute": self.max_compute,
            "at_compute": list(self.at_compute),
            "fit": dict(self.settings),
            "notes": list(self.notes),
            "health": self.health.to_json() if self.health else None,
        }
        if include_bootstrap:
            obj["bootstrap"] = json_floats(self.boot)
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FitResult:
        names = list(obj["params"])
        boot = np.array(
            [[np.nan if v is None else v for v in row] for row in obj.get("bootstrap", [])], dtype=float
        ).reshape(-1, len(names))
        result = cls(
            form=obj["form"],
            params={k: float(v) for k, v in obj["params"].items()},
            boot=boot,
            runs=tuple(obj.get("runs", ())),
            metric=obj.get("metric", "loss"),
            higher_is_better=bool(obj.get("higher_is_better", False)),
            metric_max=obj.get("metric_max"),
            group=obj.get("group"),
            max_compute=float(obj.get("max_compute", float("nan"))),
            min_compute=float(obj.get("min_compute", float("nan"))),
            at_compute=tuple(obj.get("at_compute", ())),
            settings=dict(obj.get("fit", {})),
            notes=tuple(obj.get("notes", ())),
        )
        if obj.get("health"):
            return replace(result, health=FitHealth.from_json(obj["health"]))
        # A fit stored before health existed: judge it from its bootstrap (if it was stored).
        return result.assessed() if result.boot.size else result


# ----- fitting ---------------------------------------------------------------------------------
def _target(runs: Runs, metric: str, higher_is_better: bool, metric_max: float | None) -> np.ndarray:
    """The positive, decreasing quantity the laws model: the metric, or metric_max - metric."""
    if not higher_is_better:
        return runs.metric(metric)
    values = runs.metric(metric, positive=False)
    if metric_max is None:
        raise LawInputError(
            f"metric '{metric}' is higher-is-better: pass metric_max (e.g. 1.0 for accuracy) so the law "
            "can model the shortfall metric_max - value"
        )
    gap = metric_max - values
    if (gap <= 0).any():
        raise LawInputError(f"metric '{metric}' reaches metric_max={metric_max}; pass a larger metric_max")
    return gap


def fit(
    runs: Runs | Mapping[str, Any] | Any,
    form: str = "chinchilla",
    *,
    x: str | None = None,
    irreducible: bool = True,
    metric: str = "loss",
    higher_is_better: bool = False,
    metric_max: float | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    n_jobs: int | None = None,
    at_compute: Iterable[float] = (),
    huber_delta: float = 1e-3,
    checkpoints: str = "final",
    compute_factor: float = DEFAULT_COMPUTE_FACTOR,
    budget_rtol: float = 0.05,
    isoflop_nearest: int | None = None,
    top_k: int | None = None,
    exhaustive: bool = False,
) -> FitResult:
    """Fit one law to runs, with a bootstrap over whole runs.

    form: 'chinchilla' (approach 3), 'power' with x='params'|'tokens'|'compute' (and
    irreducible=False to drop E) or a form id ('power_n', 'power_c_noE', ...), 'isoflop'
    (approach 2) or 'envelope' (approach 1, needs training curves).
    checkpoints: 'final' fits each run's last row, 'all' every row (bootstrap still by run).
    isoflop_nearest: fit each isoFLOP parabola to the k sizes nearest its best run (None: all).
    top_k: L-BFGS polishes the top_k grid starts (None: the form's default, 24 for chinchilla);
    exhaustive=True polishes every grid start, the published procedure (slow).
    n_jobs: worker processes for the bootstrap (None: all cores when n_boot >= 200).
    """
    runs = as_runs(runs)
    form = resolve_form(form, x, irreducible)
    if form not in ALL_FORMS:
        raise LawInputError(f"unknown form '{form}'; known: {', '.join(ALL_FORMS)} (or 'power' with x=)")
    if checkpoints not in ("final", "all"):
        raise LawInputError("checkpoints must be 'final' or 'all'")
    if form in OPTIMA_FORMS and checkpoints == "all":
        raise LawInputError(
            f"form '{form}' chooses its rows itself (isoflop: final, envelope: all); omit checkpoints"
        )
    if n_boot < 0:
        raise LawInputError("n_boot must be >= 0")
    if form == "envelope":
        checkpoints = "all"  # the envelope is made of the curves
    elif checkpoints == "final":
        runs = runs.final()
    y = _target(runs, metric, higher_is_better, metric_max)
    if form in FORMS:
        prep = _prepare_lse(FORMS[form], runs, y, huber_delta, top_k, exhaustive)
    elif form == "isoflop":
        prep = _prepare_isoflop(runs, y, budget_rtol, isoflop_nearest)
    else:
        prep = _prepare_envelope(runs, y)
    settings = {
        "n_boot": n_boot,
        "seed": seed,
        "checkpoints": checkpoints,
        "compute_factor": compute_factor,
        "bootstrap": "whole runs, percentile intervals",
        **prep.settings,
    }
    run_ids, run_of_row = prep.runs.run_index()
    boot = np.empty((0, len(prep.names)))
    if n_boot:
        weights = run_weights(run_of_row, n_boot, seed, prep.strata)
        # Only the L-BFGS replicates are worth a process pool; the others are one array expression.
        jobs = resolve_jobs(n_jobs, n_boot) if form in FORMS else 1
        boot = map_replicates(prep.task, weights, jobs)
        failed = int(np.isnan(boot).any(axis=1).sum())
        settings["n_boot_failed"] = failed
        if failed > MAX_FAILED_FRACTION * n_boot:
            raise FitDidNotConverge(f"{form}: {failed} of {n_boot} bootstrap replicates failed to converge")
    settings["min_target"] = float(np.min(y))
    return FitResult(
        form=form,
        params={n: float(v) for n, v in zip(prep.names, prep.point, strict=True)},
        boot=boot,
        runs=tuple(str(r) for r in run_ids),
        metric=metric,
        higher_is_better=higher_is_better,
        metric_max=metric_max,
        group=_single_group(prep.runs),
        max_compute=float(prep.runs.compute.max()),
        min_compute=float(prep.runs.compute.min()),
        at_compute=tuple(float(c) for c in at_compute),
        settings=settings,
        notes=tuple(prep.notes),
    ).assessed()


@dataclass(frozen=True)
class _Prepared:
    """A full-data estimate plus what the bootstrap needs to repeat it per replicate."""

    point: np.ndarray
    names: tuple[str, ...]
    task: Callable[[np.ndarray], np.ndarray]  # row weights (B, n) -> public params (B, P)
    runs: Runs  # the rows actually used
    strata: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _prepare_lse(
    lse: LseForm, runs: Runs, y: np.ndarray, delta: float, top_k: int | None, exhaustive: bool
) -> _Prepared:
    _check_lse_input(lse, runs, runs.n_runs)
    log_x = lse.log_features({"params": runs.params, "tokens": runs.tokens, "compute": runs.compute})
    log_y = np.log(y)
    best, warm = fit_lse(lse, log_x, log_y, np.ones(y.size), delta, top_k=top_k, exhaustive=exhaustive)
    columns = {"params": runs.params, "tokens": runs.tokens, "compute": runs.compute}
    public = lse.to_public(best.theta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        residual = log_y - np.log(lse.evaluate(public[None], columns)[0])
    settings = {
        "objective": "sum of Huber(delta) on log residuals, log-sum-exp, L-BFGS multi-start",
        "huber_delta": delta,
        "objective_value": best.objective,
        "top_k": "all" if exhaustive else (lse.top_k if top_k is None else top_k),
        # What `health` judges the fit by (see laws/health.py).
        # Robust (1.4826 x median |r|, the RMS of normal residuals): the Huber fit itself ignores
        # a few outliers, so their size should not condemn it.
        "residual_rms_log": float(1.4826 * np.median(np.abs(residual))),
        "distinct": {f: int(np.unique(columns[f]).size) for f in lse.features},
        "needed_distinct": lse.needed_distinct,
        "term_centres": [
            {
                "coef": t.coef,
                "exponent": t.exponent,
                "log_centre": float(np.mean(log_x[:, j])),
                "scale": t.scale,
            }
            for j, t in enumerate(lse.terms)
        ],
    }
    task = LseReplicateFit(lse.name, log_x, log_y, delta, warm)
    return _Prepared(lse.to_public(best.theta), lse.param_names, task, runs, settings=settings)


def _prepare_isoflop(runs: Runs, y: np.ndarray, rtol: float, nearest: int | None) -> _Prepared:
    task, rows, notes = isoflop.build_isoflop(runs.params, runs.tokens, runs.compute, y, rtol, nearest)
    runs = runs.select(rows)
    _, run_of_row = runs.run_index()
    strata = np.zeros(runs.n_runs, dtype=int)
    strata[run_of_row] = task.budget_of_row  # final rows: one row, hence one budget, per run
    settings = {
        "budget_rtol": rtol,
        "isoflop_nearest": nearest,
        "method": "parabola in log N per budget, OLS of log optima",
    }
    return _Prepared(
        _optima_point(task, rows.sum(), "isoflop"),
        isoflop.PARAM_NAMES,
        task,
        runs,
        strata,
        settings,
        tuple(notes),
    )


def _prepare_envelope(runs: Runs, y: np.ndarray) -> _Prepared:
    _, run_of_row = runs.run_index()
    task = build_envelope(run_of_row, runs.params, runs.tokens, runs.compute, y)
    settings = {"method": "lower envelope over interpolated curves, OLS of log optima"}
    return _Prepared(
        _optima_point(task, y.size, "envelope"), isoflop.PARAM_NAMES, task, runs, settings=settings
    )


def _optima_point(task: Callable[[np.ndarray], np.ndarray], n_rows: int, form: str) -> np.ndarray:
    point = task(np.ones((1, n_rows)))[0]
    if not np.all(np.isfinite(point)):
        raise FitDidNotConverge(
            f"{form}: the optima do not determine a power law (too few budgets with an interior minimum); "
            "add budgets or sizes on both sides of each optimum"
        )
    return point


def _check_lse_input(lse: LseForm, runs: Runs, n_runs: int) -> None:
    if n_runs < lse.min_runs:
        raise LawInputError(
            f"form '{lse.name}' has {len(lse.param_names)} parameters: needs >= {lse.min_runs} runs; got {n_runs}"
        )
    columns = {"params": runs.params, "tokens": runs.tokens, "compute": runs.compute}
    need = 2 if lse.n_terms > 1 else len(lse.param_names)
    for feature in lse.features:
        distinct = np.unique(columns[feature]).size
        if distinct < need:
            raise LawInputError(
                f"form '{lse.name}' needs >= {need} distinct values of '{feature}'; got {distinct}"
            )


def _single_group(runs: Runs) -> str | None:
    groups = runs.groups()
    return groups[0] if len(groups) == 1 else None


@dataclass(frozen=True)
class GroupFits:
    fits: dict[str, FitResult]

    def __getitem__(self, group: str) -> FitResult:
        return self.fits[group]

    def to_json(self, include_bootstrap: bool = False) -> dict[str, Any]:
        return {"fits": {g: f.to_json(include_bootstrap) for g, f in self.fits.items()}}


def fit_groups(
    runs: Runs | Mapping[str, Any] | Any,
    by: str = "group",
    groups: Sequence[str] | None = None,
    **kwargs: Any,
) -> GroupFits:
    """One `fit` per group (e.g. per architecture), same settings and seed for each."""
    if by != "group":
        raise LawInputError("fit_groups groups by the 'group' column; put the architecture name there")
    table = as_runs(runs).by_group()
    wanted = list(table) if groups is None else list(groups)
    missing = [g for g in wanted if g not in table]
    if missing:
        raise LawInputError(f"groups not in runs: {missing}; present: {list(table)}")
    return GroupFits({g: fit(table[g], **kwargs) for g in wanted})
