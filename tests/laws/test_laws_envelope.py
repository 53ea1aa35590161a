"""Approach 1: the lower envelope of training curves recovers the allocation exponent."""

from __future__ import annotations

import numpy as np
import pytest

import laws

P = np.array([1.8, 400.0, 0.34, 410.0, 0.28])  # E, A, alpha, B, beta
A_TRUE = P[4] / (P[2] + P[4])


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(0)
    rows = {"run_id": [], "params": [], "tokens": [], "loss": []}
    for i, n in enumerate(np.geomspace(1e7, 3e9, 12)):
        d = np.geomspace(2e8, 400 * n, 40)  # checkpoints along one run
        loss = (P[0] + P[1] * n ** -P[2] + P[3] * d ** -P[4]) * np.exp(rng.normal(0, 0.003, d.size))
        rows["run_id"] += [f"r{i}"] * d.size
        rows["params"] += [n] * d.size
        rows["tokens"] += list(d)
        rows["loss"] += list(loss)
    return rows


def test_envelope_recovers_allocation_exponent(curves):
    fit = laws.fit(curves, "envelope", n_boot=200, seed=0)
    assert fit.n_runs == 12
    assert fit.params["a"] == pytest.approx(A_TRUE, abs=0.02)
    lo, hi = fit.ci()["a"]
    assert lo <= A_TRUE <= hi
    opt = fit.optimal([1e21])
    assert opt["N_opt"].lo[0] <= opt["N_opt"].value[0] <= opt["N_opt"].hi[0]
    with pytest.raises(laws.LawInputError, match="N\\*\\(C\\)"):
        fit.predict(compute=[1e21])


def test_envelope_agrees_with_approach_3_on_the_same_curves(curves):
    a3 = laws.fit(curves, "chinchilla", checkpoints="all", n_boot=0).to_json()["derived"]["a"]
    a1 = laws.fit(curves, "envelope", n_boot=0).params["a"]
    assert a1 == pytest.approx(a3, abs=0.03)
