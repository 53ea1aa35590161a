"""The objective every approach-3 fit minimises: gradient, batched form and weights."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from laws.forms import FORMS
from laws.huber import huber, lse_objective, lse_objective_many


def _problem(form_name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    form = FORMS[form_name]
    log_x = rng.uniform(16, 24, (40, form.n_terms))
    log_y = rng.normal(1.0, 0.2, 40)
    theta = form.start_grid()[rng.integers(0, form.start_grid().shape[0])] + rng.normal(
        0, 0.1, len(form.param_names)
    )
    return form, log_x, log_y, theta


def test_huber_is_quadratic_then_linear():
    r = np.array([-1.0, -1e-3, 0.0, 5e-4, 2.0])
    np.testing.assert_allclose(huber(r, 1e-3), [1e-3 * (1 - 5e-4), 5e-7, 0.0, 1.25e-7, 1e-3 * (2 - 5e-4)])


@pytest.mark.parametrize("form_name", ["chinchilla", "power_n", "power_c", "power_d_noE"])
def test_analytic_gradient_matches_finite_differences(form_name):
    form, log_x, log_y, theta = _problem(form_name)
    weights = np.random.default_rng(1).integers(0, 3, 40).astype(float)
    delta = 0.05  # wide enough that finite differences do not straddle Huber's kink often

    def f(t):
        return lse_objective(t, log_x, log_y, weights, delta, form.has_E)[0]

    grad = lse_objective(theta, log_x, log_y, weights, delta, form.has_E)[1]
    numeric = approx_fprime(theta, f, 1e-7)
    assert np.max(np.abs(grad - numeric)) <= 1e-5 * max(1.0, np.max(np.abs(grad)))


def test_batched_grid_scores_equal_single_evaluations():
    form, log_x, log_y, _ = _problem("chinchilla")
    grid = form.start_grid()[::97]
    weights = np.ones(40)
    batched = lse_objective_many(grid, log_x, log_y, weights, 1e-3, True, chunk=7)
    single = [lse_objective(t, log_x, log_y, weights, 1e-3, True)[0] for t in grid]
    np.testing.assert_allclose(batched, single, rtol=1e-12)


def test_weights_equal_duplicated_rows():
    """A bootstrap replicate's weights give exactly the objective of the resampled data set."""
    form, log_x, log_y, theta = _problem("chinchilla", seed=3)
    counts = np.random.default_rng(4).integers(0, 4, 40)
    weighted = lse_objective(theta, log_x, log_y, counts.astype(float), 1e-3, True)
    rows = np.repeat(np.arange(40), counts)
    duplicated = lse_objective(theta, log_x[rows], log_y[rows], np.ones(rows.size), 1e-3, True)
    assert weighted[0] == pytest.approx(duplicated[0], rel=1e-12)
    np.testing.assert_allclose(weighted[1], duplicated[1], rtol=1e-10)


def test_public_internal_round_trip():
    for form in FORMS.values():
        theta = form.start_grid()[5] + 0.1
        np.testing.assert_allclose(form.to_internal(form.to_public(theta)), theta, rtol=1e-12)
