"""Known parameters in, the same parameters out; and 95% intervals that cover ~95% of the time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

import laws

TRUE_CHINCHILLA = np.array([1.8, 400.0, 0.34, 410.0, 0.28])  # E, A, alpha, B, beta


def test_chinchilla_recovers_known_parameters(chinchilla_grid):
    rng = np.random.default_rng(7)
    runs = chinchilla_grid(TRUE_CHINCHILLA, rng, noise=0.002)
    fit = laws.fit(runs, "chinchilla", n_boot=0)
    got = np.array([fit.params[k] for k in ("E", "A", "alpha", "B", "beta")])
    assert got[0] == pytest.approx(1.8, abs=0.02)
    assert got[2] == pytest.approx(0.34, abs=0.02)
    assert got[4] == pytest.approx(0.28, abs=0.02)
    # coefficients are poorly identified individually; the law's predictions are not
    n, d = np.array([1e8, 1e9, 1e10]), np.array([2e9, 2e10, 2e11])
    truth = (
        TRUE_CHINCHILLA[0]
        + TRUE_CHINCHILLA[1] * n ** -TRUE_CHINCHILLA[2]
        + TRUE_CHINCHILLA[3] * d ** -TRUE_CHINCHILLA[4]
    )
    assert fit.predict(params=n, tokens=d).value == pytest.approx(truth, rel=5e-3)


@pytest.mark.parametrize(
    ("form", "feature", "truth"),
    [
        ("power_n", "params", {"E": 1.7, "A": 300.0, "alpha": 0.3}),
        ("power_d", "tokens", {"E": 1.9, "B": 900.0, "beta": 0.32}),
        ("power_c", "compute", {"E": 1.6, "C0": 1e20, "gamma": 0.15}),
        ("power_n_noE", "params", {"A": 40.0, "alpha": 0.12}),
        ("power_c_noE", "compute", {"C0": 2.7e28, "gamma": 0.05}),  # Kaplan L(C)
    ],
)
def test_power_forms_recover_known_parameters(form, feature, truth):
    rng = np.random.default_rng(3)
    x = np.geomspace(1e7, 1e11, 25) if feature != "compute" else np.geomspace(1e17, 1e23, 25)
    public = np.array([list(truth.values())])
    y = laws.FORMS[form].evaluate(public, {feature: x})[0] * np.exp(rng.normal(0, 0.002, x.size))
    runs = {"params": np.full(x.size, 1e8), "tokens": np.full(x.size, 2e9), "loss": y}
    runs[feature] = x  # compute, when given, is taken as is rather than 6ND
    fit = laws.fit(runs, form, n_boot=0)
    assert list(fit.params) == list(truth)
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=0.08), (name, fit.params)


def test_power_shorthand_resolves_to_form_ids():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e7, 1e10, 10)
    runs = {"params": n, "tokens": 20 * n, "loss": (2 + 50 * n**-0.2) * np.exp(rng.normal(0, 0.001, 10))}
    assert laws.fit(runs, "power", x="params", n_boot=0).form == "power_n"
    assert laws.fit(runs, "power", x="compute", irreducible=False, n_boot=0).form == "power_c_noE"


def test_higher_is_better_metric_is_modelled_as_shortfall():
    """accuracy = 1 - (E + A/N^alpha): fitted through metric_max - accuracy, reported as accuracy."""
    rng = np.random.default_rng(11)
    n = np.geomspace(1e7, 1e10, 16)
    acc = 1.0 - (0.05 + 30.0 * n**-0.25) * np.exp(rng.normal(0, 0.003, n.size))
    runs = {"params": n, "tokens": 20 * n, "recall_acc": acc}
    fit = laws.fit(
        runs, "power_n", metric="recall_acc", higher_is_better=True, metric_max=1.0, n_boot=50, seed=1
    )
    assert fit.params["alpha"] == pytest.approx(0.25, abs=0.03)
    pred = fit.predict(params=[1e11])
    assert pred.value[0] == pytest.approx(1.0 - (0.05 + 30.0 * 1e11**-0.25), abs=0.01)
    assert pred.lo[0] <= pred.value[0] <= pred.hi[0]
    with pytest.raises(laws.LawInputError, match="metric_max"):
        laws.fit(runs, "power_n", metric="recall_acc", higher_is_better=True, n_boot=0)


@pytest.mark.slow
def test_bootstrap_intervals_cover_truth_about_95_percent_of_draws():
    """100 data sets from a known L(N) = E + A/N^alpha with 2% noise, 100 resamples each.

    Coverage per parameter must not fall below the 0.1% quantile of Binomial(100, 0.95), which
    fails too-narrow intervals; and the mean interval width must match the actual spread of the
    estimates across draws (2 x 1.96 sd), which fails too-wide ones (a binomial upper bound
    cannot: 100 of 100 is a plausible draw)."""
    truth = {"E": 1.7, "A": 300.0, "alpha": 0.3}
    rng = np.random.default_rng(20240)
    n = np.geomspace(1e6, 1e10, 24)
    repeats, n_boot = 100, 100
    covered = np.zeros(3)
    widths, estimates = [], []
    for r in range(repeats):
        loss = (truth["E"] + truth["A"] * n ** -truth["alpha"]) * np.exp(rng.normal(0, 0.02, n.size))
        fit = laws.fit(
            {"params": n, "tokens": 20 * n, "loss": loss}, "power_n", n_boot=n_boot, seed=r, n_jobs=1
        )
        ci = fit.ci()
        covered += [ci[k][0] <= v <= ci[k][1] for k, v in truth.items()]
        widths.append([ci[k][1] - ci[k][0] for k in truth])
        estimates.append([fit.params[k] for k in truth])
    lo = binom.ppf(0.001, repeats, 0.95)  # 87 of 100
    for name, k in zip(truth, covered, strict=True):
        assert k >= lo, (name, k, lo)
    ratio = np.mean(widths, axis=0) / (2 * 1.96 * np.std(estimates, axis=0))
    assert np.all((ratio > 0.7) & (ratio < 1.5)), ratio
