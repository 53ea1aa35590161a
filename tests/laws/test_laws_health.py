"""Fit health: degenerate, weak and healthy fits on data whose identifiability is known, the
`auto` form choice, the backtest against a hand computation, and compare's refusal to state a
trend from a degenerate law."""

from __future__ import annotations

import numpy as np
import pytest

import laws
from laws.health import MAX_BACKTEST_ERROR

LAW = dict(E=1.0, A=30.0, alpha=0.3, B=60.0, beta=0.3)


def design(sizes, budgets, *, seed: int = 0, noise: float = 0.002, law=LAW) -> dict[str, np.ndarray]:
    """Every size x every budget, losses from L(N, D) with multiplicative noise."""
    n, d = np.meshgrid(np.asarray(sizes, float), np.asarray(budgets, float))
    n, d = n.ravel(), d.ravel()
    loss = law["E"] + law["A"] * n ** -law["alpha"] + law["B"] * d ** -law["beta"]
    loss *= np.exp(np.random.default_rng(seed).normal(0.0, noise, n.size))
    return {"params": n, "tokens": d, "loss": loss}


LADDER = design(np.geomspace(8e3, 128e3, 5), np.geomspace(1e5, 8e5, 4))
TWO_BUDGETS = design(np.geomspace(25e3, 200e3, 4), [1e6, 2e6])  # the old quickstart's design


def test_epoch_chinchilla_points_are_healthy(epoch_runs):
    fit = laws.fit(epoch_runs, "chinchilla", n_boot=100, seed=0, n_jobs=1)
    assert fit.health.status == "healthy", fit.health.reasons
    assert fit.health.checks["ci_span"]["alpha"] < 2  # the numbers behind the verdict are kept


def test_two_budgets_cannot_identify_chinchilla():
    fit = laws.fit(TWO_BUDGETS, "chinchilla", n_boot=60, seed=0, n_jobs=1)
    assert fit.health.status == "degenerate"
    assert "only 2 distinct token budgets" in fit.health.reasons[0]
    document = fit.to_json()
    assert document["health"]["status"] == "degenerate"  # the Fit JSON carries it
    assert laws.FitResult.from_json(document).health == fit.health


def test_a_law_without_a_visible_floor_has_a_weak_E():
    # E = 0 and a narrow range: nothing in the data shows where the loss flattens.
    no_floor = design(
        np.geomspace(8e3, 128e3, 5), np.geomspace(1e5, 8e5, 4), noise=0.005, law={**LAW, "E": 0.0}
    )
    fit = laws.fit(no_floor, "chinchilla", n_boot=60, seed=0, n_jobs=1)
    assert fit.health.status == "weak"
    assert any("floor E" in r or "E =" in r for r in fit.health.reasons), fit.health.reasons


def test_an_exponent_whose_interval_spans_decades_is_degenerate():
    # Sizes within 2.5x of each other and 5% noise: alpha is free to trade with E and A.
    runs = design([1e4, 1.5e4, 2e4, 2.5e4], [1e6], noise=0.05)
    fit = laws.fit(runs, "power_n", n_boot=60, seed=0, n_jobs=1)
    assert fit.health.status == "degenerate"
    assert any(r.startswith("alpha's 95% CI") for r in fit.health.reasons), fit.health.reasons


def test_no_bootstrap_is_never_called_healthy():
    fit = laws.fit(LADDER, "chinchilla", n_boot=0)
    assert fit.health.status == "weak" and "no bootstrap" in fit.health.reasons[0]


def test_a_form_that_misses_the_shape_is_weak():
    # power_c on a grid of (N, D): points of one compute have different losses.
    fit = laws.fit(
        design(np.geomspace(8e3, 512e3, 5), np.geomspace(1e5, 3.2e6, 4)), "power_c", n_boot=40, n_jobs=1
    )
    assert fit.settings["residual_rms_log"] > 0.02
    assert any("residual scale" in r for r in fit.health.reasons)


def test_auto_keeps_chinchilla_when_it_is_identified():
    fit = laws.choose_form(lambda form: laws.fit(LADDER, form, n_boot=60, seed=0, n_jobs=1))
    assert fit.form == "chinchilla"
    assert fit.settings["form_choice"]["tried"] == [
        {"form": "chinchilla", "status": fit.health.status, "reason": fit.health.summary(1)}
    ]


def test_auto_falls_back_to_a_law_of_compute_and_says_why():
    fit = laws.choose_form(lambda form: laws.fit(TWO_BUDGETS, form, n_boot=60, seed=0, n_jobs=1))
    choice = fit.settings["form_choice"]
    assert fit.form == "power_c" and choice["chosen"] == "power_c"
    assert choice["tried"][0]["form"] == "chinchilla" and choice["tried"][0]["status"] == "degenerate"
    assert "chinchilla degenerate" in choice["why"]
    assert fit.to_json()["fit"]["form_choice"]["chosen"] == "power_c"


def test_auto_reports_forms_that_cannot_be_fitted():
    tiny = design([1e4, 2e4], [1e6], noise=0.0)  # two runs: no form has enough
    with pytest.raises(laws.LawInputError, match="no form could be fitted"):
        laws.choose_form(lambda form: laws.fit(tiny, form, n_boot=10, n_jobs=1))


def test_backtest_matches_a_hand_computation():
    result = laws.backtest(LADDER, "chinchilla", band_boot=60, seed=0, n_jobs=1)
    size = result["largest_size"]
    held = LADDER["params"] >= LADDER["params"].max() / 1.05
    train = {k: v[~held] for k, v in LADDER.items()}
    by_hand = laws.fit(train, "chinchilla", n_boot=0)
    predicted = by_hand.predict(params=LADDER["params"][held], tokens=LADDER["tokens"][held]).value
    errors = np.abs(predicted - LADDER["loss"][held]) / LADDER["loss"][held]
    assert size["n_test_runs"] == held.sum() == 4
    assert size["abs_rel_error_mean"] == pytest.approx(errors.mean(), rel=1e-9)
    assert size["abs_rel_error_max"] == pytest.approx(errors.max(), rel=1e-9)
    assert size["abs_rel_error_mean"] < MAX_BACKTEST_ERROR
    assert 0 <= size["inside_band"] <= 4 and all("band95" in row for row in size["per_run"])
    budget = result["largest_budget"]
    assert budget["held_out_by"] == "tokens" and budget["n_test_runs"] == 5
    fit = laws.fit(LADDER, "chinchilla", n_boot=60, seed=0, n_jobs=1).with_backtest(result)
    assert fit.health.backtest["largest_size"]["abs_rel_error_mean"] == size["abs_rel_error_mean"]


def test_a_backtest_that_misses_makes_the_fit_weak():
    result = laws.backtest(LADDER, "chinchilla", band_boot=0)
    result["largest_size"] = {**result["largest_size"], "abs_rel_error_mean": 0.2}
    fit = laws.fit(LADDER, "chinchilla", n_boot=40, seed=0, n_jobs=1).with_backtest(result)
    assert fit.health.status in ("weak", "degenerate")
    assert any("leave-largest-size-out: mean error 20.0%" in r for r in fit.health.reasons)


def test_compare_states_no_trend_from_a_degenerate_law():
    kwargs = dict(form="chinchilla", n_boot=60, n_jobs=1)
    good = laws.fit(LADDER, seed=0, **kwargs)
    bad = laws.fit(design(np.geomspace(8e3, 128e3, 5), [1e5, 2e5], noise=0.002), seed=1, **kwargs)
    assert bad.health.status == "degenerate"
    result = laws.compare_fits(bad, good, name_x="x", name_base="base")
    verdict = result.verdicts["largest_measured"]
    assert verdict.kind == "not_estimated"
    assert "no trend or crossover stated" in verdict.text and "not an estimate" in verdict.text
    assert result.crossover["text"].startswith("not stated")
    assert result.to_json()["health"]["x"]["status"] == "degenerate"
