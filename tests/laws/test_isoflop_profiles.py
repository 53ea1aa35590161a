"""`laws.isoflop_profiles`: the parabola per compute budget that isoFLOP figures draw."""

from __future__ import annotations

import numpy as np
import pytest

from laws.isoflop import budget_ids
from laws.isoflop_profiles import isoflop_profile_set, isoflop_profiles


def columns(rows: list[tuple[str, float, float, float]]) -> dict[str, list]:
    group, params, compute, loss = zip(*rows, strict=True)
    return {"group": list(group), "params": list(params), "compute": list(compute), "loss": list(loss)}


def test_vertex_of_an_exact_parabola_and_budgets_too_small_to_fit() -> None:
    sizes = (1e4, 3e4, 1e5, 3e5)
    rows = [
        ("a", n, 1e12 * (1 + 0.01 * i), 3.0 + 0.2 * (np.log(n) - np.log(5e4)) ** 2)
        for i, n in enumerate(sizes)
    ]
    rows += [("a", n, 1e14, 2.0 + 0.1 * np.log(n)) for n in sizes[:3]]  # monotone: no interior minimum
    rows += [("a", n, 1e16, 1.0) for n in sizes[:2]]  # two sizes cannot hold a parabola
    profiles = isoflop_profiles(columns(rows), "loss")
    assert [round(p.budget, -10) for p in profiles] == [pytest.approx(1.015e12, rel=0.01), 1e14]
    exact, monotone = profiles
    assert exact.interior and exact.params_opt == pytest.approx(5e4, rel=1e-6)
    assert exact.value_opt == pytest.approx(3.0, abs=1e-9)
    assert exact.params == sorted(exact.params) and len(exact.curve_params) == len(exact.curve_values)
    assert not monotone.interior and monotone.params_opt == sizes[0]


def test_higher_is_better_looks_for_a_maximum_and_groups_stay_apart() -> None:
    sizes = (1e4, 3e4, 1e5)
    rows = [(g, n, 1e12, 0.9 - 0.1 * (np.log(n) - np.log(3e4)) ** 2) for g in ("x", "y") for n in sizes]
    profiles = isoflop_profiles(columns(rows), "loss", higher_is_better=True)
    assert [p.group for p in profiles] == ["x", "y"]
    assert all(p.interior and p.params_opt == pytest.approx(3e4) for p in profiles)
    # read as a loss the same parabola opens downwards: no minimum inside, the best run stands in
    assert not any(p.interior for p in isoflop_profiles(columns(rows), "loss"))


def test_budgets_cluster_within_tolerance_and_extra_budgets_are_counted() -> None:
    ids, centres = budget_ids(np.array([1e9, 1.03e9, 3e9, 2.95e9, 9e9]))
    assert ids.tolist() == [0, 0, 1, 1, 2] and centres[0] == pytest.approx(np.sqrt(1e9 * 1.03e9))
    sizes = (1e4, 3e4, 1e5)
    rows = [("a", n, c, 3.0 + (np.log(n) - 10) ** 2) for c in np.geomspace(1e12, 1e15, 6) for n in sizes]
    found = isoflop_profile_set(columns(rows), "loss", max_budgets=4)
    assert len(found.profiles) == 4 and found.skipped == 2
    assert {p.n_sizes for p in found.profiles} == {3}
    budgets = [p.budget for p in found.profiles]  # spread over compute: both ends kept
    assert budgets[0] == pytest.approx(1e12) and budgets[-1] == pytest.approx(1e15)
