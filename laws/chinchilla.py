"""Approach 3's derived quantities: compute-optimal allocation under L(N, D) = E + A/N^a + B/D^b.

Minimising A N^-alpha + B D^-beta subject to C = k N D (k = 6) gives (Hoffmann et al. 2022, eq. 4)
  N*(C) = G (C/k)^a,  D*(C) = G^-1 (C/k)^b,  G = (alpha A / (beta B))^(1/(alpha+beta)),
  a = beta/(alpha+beta),  b = alpha/(alpha+beta),
and along that frontier L*(C) = E + K (C/k)^-(alpha beta/(alpha+beta)): a pure power law in C,
whose exponent is what decides whether one architecture pulls away from another.
All functions take public parameters (B, 5) in FORMS['chinchilla'].param_names order
(E, A, alpha, B, beta), so the same code gives point estimates and bootstrap distributions.
"""

from __future__ import annotations

import numpy as np


def _unpack(public: np.ndarray) -> tuple[np.ndarray, ...]:
    p = np.atleast_2d(np.asarray(public, dtype=float))
    return tuple(p[:, i, None] for i in range(5))  # each (B, 1)


def derived_scalars(public: np.ndarray) -> dict[str, np.ndarray]:
    """Exponents of the compute-optimal frontier, each (B,)."""
    _E, A, alpha, B, beta = _unpack(public)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = alpha + beta
        G = (alpha * A / (beta * B)) ** (1.0 / s)
        out = {"a": beta / s, "b": alpha / s, "G": G, "frontier_exponent": alpha * beta / s}
    return {k: v[:, 0] for k, v in out.items()}


def optimal(public: np.ndarray, compute: np.ndarray, compute_factor: float = 6.0) -> dict[str, np.ndarray]:
    """N*, D*, D*/N* and the frontier loss at each compute: each (B, n)."""
    E, A, alpha, B, beta = _unpack(public)
    c = np.asarray(compute, dtype=float).reshape(1, -1) / compute_factor
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = alpha + beta
        G = (alpha * A / (beta * B)) ** (1.0 / s)
        n_opt = G * c ** (beta / s)
        d_opt = c / n_opt
        loss = E + A * n_opt ** (-alpha) + B * d_opt ** (-beta)
    return {"N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt, "predicted": loss}
