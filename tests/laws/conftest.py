"""Fixtures for the laws tests: the shared reference data and synthetic run tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _shared_dir() -> Path:
    env = os.environ.get("CEILING_SHARED_DIR")
    if env:
        return Path(env)
    # tests/laws/conftest.py -> repo root is parents[2]; shared/ sits beside the clone.
    return (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if not (path / "reference").is_dir():
        pytest.skip(f"shared reference data not found at {path} (set CEILING_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def epoch_runs(shared_dir: Path) -> dict[str, np.ndarray]:
    """Epoch's Chinchilla points, 5 highest-loss rows dropped as Epoch did; D = C / (6N)."""
    import csv

    path = shared_dir / "reference" / "epoch_chinchilla" / "svg_extracted_data.csv"
    if not path.is_file():
        pytest.skip(f"missing {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.argsort(loss, kind="stable")[:-5]
    assert keep.size == 240
    return {"params": n[keep], "tokens": c[keep] / (6 * n[keep]), "compute": c[keep], "loss": loss[keep]}


def _chinchilla_grid(p: np.ndarray, rng: np.random.Generator, noise: float = 0.01) -> dict[str, np.ndarray]:
    n, ratio = np.meshgrid(np.geomspace(5e7, 5e9, 7), np.array([5.0, 10.0, 20.0, 40.0, 80.0]))
    n, d = n.ravel(), (ratio * n).ravel()
    loss = (p[0] + p[1] * n ** -p[2] + p[3] * d ** -p[4]) * np.exp(rng.normal(0.0, noise, n.size))
    return {"params": n, "tokens": d, "loss": loss}


@pytest.fixture(scope="session")
def chinchilla_grid():
    """A function (p, rng, noise=0.01) -> runs drawn from L(N, D) = E + A/N^alpha + B/D^beta,
    p = (E, A, alpha, B, beta): 7 sizes x 5 tokens-per-parameter ratios, multiplicative noise.
    A fixture rather than an import, so it works under any pytest import mode."""
    return _chinchilla_grid
