"""Seed replicates in laws: each seed is one whole run in the bootstrap, never an extra model size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import laws
from laws.bootstrap import run_weights
from orchestrator.store import Store
from orchestrator.store.law_inputs import law_runs
from tests.factories import make_trial

SIZES = (1e4, 3e4, 1e5)
SEEDS = (0, 1, 2)


def _columns(sizes=SIZES, seeds=SEEDS, checkpoints: int = 1) -> dict[str, list]:
    """L(N) = 2 + 30 N^-0.3 with a per-seed offset; ``checkpoints`` rows per run (a curve)."""
    cols: dict[str, list] = {k: [] for k in ("run_id", "params", "tokens", "compute", "loss")}
    for size in sizes:
        for seed in seeds:
            for c in range(checkpoints):
                tokens = 1e6 * (c + 1) / checkpoints
                cols["run_id"].append(f"n{int(size)}-s{seed}")
                cols["params"].append(size)
                cols["tokens"].append(tokens)
                cols["compute"].append(6 * size * tokens)
                cols["loss"].append(2 + 30 * size**-0.3 + 0.01 * (seed - 1) + 0.1 / (c + 1))
    return cols


def test_bootstrap_draws_whole_runs_so_all_rows_of_a_run_move_together():
    cols = _columns(checkpoints=4)
    run_ids = np.array(cols["run_id"])
    _, run_of_row = np.unique(run_ids, return_inverse=True)
    weights = run_weights(run_of_row, 200, 0)
    for run in np.unique(run_of_row):
        rows = weights[:, run_of_row == run]
        assert (rows == rows[:, :1]).all()  # every checkpoint of a run carries the run's draw count
    # Each replicate draws as many runs as there are (9 = 3 sizes x 3 seeds), not as many rows (36).
    per_run = weights[:, np.unique(run_of_row, return_index=True)[1]]
    assert (per_run.sum(axis=1) == 9).all()


def test_replicates_are_runs_not_extra_sizes():
    # Two sizes with three seeds each are still two sizes: a 3-parameter L(N) law needs three.
    with pytest.raises(laws.LawInputError, match="distinct values of 'params'"):
        laws.fit(_columns(sizes=SIZES[:2]), "power", x="params", n_boot=0)
    result = laws.fit(_columns(), "power", x="params", n_boot=50, seed=0)
    assert result.n_runs == 9 and len(result.runs) == 9
    # The spread between seeds widens nothing into a wrong law: the fit recovers the exponent.
    assert result.params["alpha"] == pytest.approx(0.3, abs=0.05)


def test_store_seeds_become_separate_law_points(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_sweep("seeds", {}, workdir=None, code_version=None)
    store.add_trials(
        "seeds",
        [make_trial(f"s{seed}", seed=seed, status="done", final_val_loss=3.0 + seed / 100) for seed in SEEDS],
    )
    runs = law_runs(store, "seeds")
    assert runs.columns["run_id"] == ["s0", "s1", "s2"]
    assert len(set(runs.columns["params"])) == 1  # one size, three replicate runs
