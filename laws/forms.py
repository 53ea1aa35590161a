"""Functional forms that are sums of power terms: y = [E] + sum_j coef_j * x_j^(-k_j).

All of them are fitted in the log-sum-exp parameterisation of Hoffmann et al. (2022):
log y = LSE(c_j - k_j log x_j, ..., e), with c_j = log coef_j and e = log E. Working in logs
keeps the coefficients (which span ten orders of magnitude) well scaled for L-BFGS and makes
positivity of coef and E automatic. One generic form type serves Chinchilla's L(N, D) and the
one-variable power laws, so the objective, gradient and solver exist once.

Internal parameter vector theta = [c_1..c_m, k_1..k_m, e?]; public parameters are E, the
coefficients and the exponents (the names the JSON contract uses).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .errors import LawInputError

FEATURES = ("params", "tokens", "compute")


@dataclass(frozen=True)
class Term:
    """One power term coef * x^-k. With `scale=True` it is written (coef/x)^k instead
    (Kaplan's L(C) = (C0/C)^gamma), and internally c = k log coef."""

    coef: str
    exponent: str
    feature: str
    scale: bool = False


@dataclass(frozen=True)
class LseForm:
    name: str
    terms: tuple[Term, ...]
    has_E: bool
    grid: tuple[tuple[float, ...], ...]  # internal start values, one tuple per theta entry
    min_runs: int
    top_k: int = 8  # grid starts polished by L-BFGS (see solver.fit_lse)

    # ----- parameter bookkeeping --------------------------------------------------------
    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Public names in contract order: E first, then coef, exponent per term."""
        names = ["E"] if self.has_E else []
        for t in self.terms:
            names += [t.coef, t.exponent]
        return tuple(names)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(t.feature for t in self.terms)

    def to_public(self, theta: np.ndarray) -> np.ndarray:
        """Internal thetas (..., P) -> public params (..., P) in `param_names` order."""
        theta = np.asarray(theta, dtype=float)
        m = self.n_terms
        out = []
        if self.has_E:
            out.append(np.exp(theta[..., 2 * m]))
        for j, t in enumerate(self.terms):
            c, k = theta[..., j], theta[..., m + j]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out.append(np.exp(c / k) if t.scale else np.exp(c))
            out.append(k)
        return np.stack(out, axis=-1)

    def to_internal(self, public: np.ndarray) -> np.ndarray:
        public = np.asarray(public, dtype=float)
        off = 1 if self.has_E else 0
        cs, ks = [], []
        for j, t in enumerate(self.terms):
            coef, k = public[..., off + 2 * j], public[..., off + 2 * j + 1]
            cs.append(k * np.log(coef) if t.scale else np.log(coef))
            ks.append(k)
        parts = cs + ks + ([np.log(public[..., 0])] if self.has_E else [])
        return np.stack(parts, axis=-1)

    @property
    def needed_distinct(self) -> dict[str, int]:
        """Distinct values each feature needs for its term to be identified: a coefficient and an
        exponent per term, plus the floor E that every term shares (3 with E, 2 without)."""
        return {t.feature: 3 if self.has_E else 2 for t in self.terms}

    def start_grid(self) -> np.ndarray:
        return np.array(list(itertools.product(*self.grid)), dtype=float)

    # ----- evaluation (public parameters, vectorised over bootstrap replicates) ----------
    def evaluate(self, public: np.ndarray, x: dict[str, np.ndarray]) -> np.ndarray:
        """y for public params (B, P) at feature arrays (n,) -> (B, n)."""
        public = np.atleast_2d(public)
        missing = [f for f in self.features if x.get(f) is None]
        if missing:
            need = " and ".join(f"{f}=" for f in self.features)
            raise LawInputError(f"form '{self.name}' predicts from {need}; missing {', '.join(missing)}")
        try:
            xs = np.broadcast_arrays(*[np.asarray(x[f], dtype=float).reshape(-1) for f in self.features])
        except ValueError as exc:
            raise LawInputError(
                f"form '{self.name}': {' and '.join(self.features)} must have matching lengths"
            ) from exc
        off = 1 if self.has_E else 0
        total = np.zeros((public.shape[0], xs[0].size))
        if self.has_E:
            total += public[:, :1]
        for j, t in enumerate(self.terms):
            xv = xs[j][None, :]
            coef, k = public[:, off + 2 * j, None], public[:, off + 2 * j + 1, None]
            with np.errstate(over="ignore", invalid="ignore"):
                total = total + ((coef / xv) ** k if t.scale else coef * xv ** (-k))
        return total

    def log_features(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(n, m) matrix of log x_j: what the objective needs, computed once per fit."""
        return np.stack([np.log(columns[f]) for f in self.features], axis=1)


_C = tuple(np.arange(0.0, 40.0, 2.5))
_K = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
_E = tuple(np.arange(-2.0, 2.5, 0.5))


def _power(name: str, coef: str, exponent: str, feature: str, has_E: bool, scale: bool = False) -> LseForm:
    grid = (_C, _K) + ((_E,) if has_E else ())
    return LseForm(name, (Term(coef, exponent, feature, scale),), has_E, grid, min_runs=4 if has_E else 3)


# Chinchilla's published initialisation grid (Hoffmann et al. 2022, Appendix D.2; as in Epoch's
# replication): a, b in {0, 5, ..., 25}, e in {-1, -.5, ..., 1}, alpha, beta in {0, .5, ..., 2}.
CHINCHILLA = LseForm(
    "chinchilla",
    (Term("A", "alpha", "params"), Term("B", "beta", "tokens")),
    True,
    (
        tuple(np.arange(0.0, 30.0, 5.0)),
        tuple(np.arange(0.0, 30.0, 5.0)),
        tuple(np.arange(0.0, 2.5, 0.5)),
        tuple(np.arange(0.0, 2.5, 0.5)),
        tuple(np.arange(-1.0, 1.5, 0.5)),
    ),
    min_runs=8,
    top_k=24,  # two exponents and two coefficients trade off: more basins, more starts
)

FORMS: dict[str, LseForm] = {
    "chinchilla": CHINCHILLA,
    "power_n": _power("power_n", "A", "alpha", "params", True),
    "power_n_noE": _power("power_n_noE", "A", "alpha", "params", False),
    "power_d": _power("power_d", "B", "beta", "tokens", True),
    "power_d_noE": _power("power_d_noE", "B", "beta", "tokens", False),
    "power_c": _power("power_c", "C0", "gamma", "compute", True, scale=True),
    "power_c_noE": _power("power_c_noE", "C0", "gamma", "compute", False, scale=True),
}

_POWER_ALIASES = {"params": "n", "n": "n", "tokens": "d", "d": "d", "compute": "c", "c": "c"}


def resolve_form(form: str, x: str | None = None, irreducible: bool = True) -> str:
    """Map the user-facing ('power', x='compute', irreducible=False) onto a form id."""
    if form == "power":
        if x is None or x.lower() not in _POWER_ALIASES:
            raise LawInputError("form='power' needs x='params', 'tokens' or 'compute'")
        return f"power_{_POWER_ALIASES[x.lower()]}{'' if irreducible else '_noE'}"
    return form
