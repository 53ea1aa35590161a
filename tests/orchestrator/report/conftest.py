"""Stores for the report tests: a synthetic two-architecture isoFLOP study written with `make_trial`
(many points, fast), with a failed and a diverged trial and copy scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.store import Store
from tests.factories import make_trial

# L(N, D) = E + A / N^alpha + B / D^beta per architecture; hawk is a little worse at small scale and
# scales a little better with data, so the comparison has something to say.
LAWS = {
    "transformer": {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 900.0, "beta": 0.30},
    "hawk": {"E": 1.8, "A": 520.0, "alpha": 0.34, "B": 700.0, "beta": 0.29},
}
BUDGETS = (1e12, 3e12, 1e13)
SIZES = (2e4, 5e4, 1.2e5, 3e5)
TRACEBACK = (
    'Traceback (most recent call last):\n  File "loop.py", line 1\nRuntimeError: worker ran out of memory'
)


def law_loss(arch: str, params: float, tokens: float) -> float:
    p = LAWS[arch]
    return p["E"] + p["A"] / params ** p["alpha"] + p["B"] / tokens ** p["beta"]


def write_synthetic_sweep(url: str, name: str = "synth", *, sizes=SIZES, budgets=BUDGETS) -> dict[str, float]:
    """A finished isoFLOP sweep (2 architectures x budgets x sizes) plus one failed and one diverged trial.
    Returns the final loss per trial id."""
    store = Store.open(url)
    spec = {"name": name, "architectures": list(LAWS), "budgets": {"isoflop": {"budgets": list(budgets)}}}
    store.upsert_sweep(name, spec, workdir=None, code_version="git:abc123def456")
    rng = np.random.default_rng(0)
    rows, finals = [], {}
    for arch in LAWS:
        for budget in budgets:
            for i, params in enumerate(sizes):
                tokens = int(budget / (6 * params))
                trial_id = f"{name}-{arch[:4]}-{budget:.0e}-{i}"
                rows.append(
                    make_trial(
                        trial_id,
                        arch=arch,
                        label=arch,
                        size_target=params,
                        params_non_embedding=int(params),
                        tokens=tokens,
                        flops_6nd=6.0 * int(params) * tokens,
                        config={"arch": arch, "model": {"d_model": 16 * (i + 1)}},
                        code_version="git:abc123def456",
                    )
                )
                loss = law_loss(arch, params, tokens) * (1 + 0.003 * rng.standard_normal())
                copy = min(0.99, 0.2 + 0.15 * i + (0.1 if arch == "transformer" else 0.0))
                finals[trial_id] = {"final_val_loss": loss, "final_metrics": {"copy_score": copy}}
    rows.append(make_trial(f"{name}-fail", arch="hawk", label="hawk"))
    rows.append(make_trial(f"{name}-nan", arch="hawk", label="hawk", tokens=99_000))
    store.add_trials(name, rows)
    for trial_id, final in finals.items():
        store.finish(trial_id, store.claim(trial_id), **final)
    store.fail(f"{name}-fail", store.claim(f"{name}-fail"), TRACEBACK)
    store.fail(f"{name}-nan", store.claim(f"{name}-nan"), "loss became NaN at step 7", status="diverged",
               diverged_step=7)  # fmt: skip
    store.close()
    return {k: v["final_val_loss"] for k, v in finals.items()}


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, float]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'ceiling.db'}"
    return url, write_synthetic_sweep(url)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))
