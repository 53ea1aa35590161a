"""Every shipped sweep file is valid against the code's own schema (as litgpt checks its presets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.spec import load_spec
from tests.conftest import EXAMPLES

SWEEPS = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_examples():
    assert {p.name for p in SWEEPS} >= {
        "smoke.yaml",
        "quickstart.yaml",
        "cpu-ladder.yaml",
        "cpu-ladder-3seeds.yaml",
    }


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_example_sweep_validates(path: Path):
    spec = load_spec(path)  # raises, naming the field, on anything the schema refuses
    assert spec.name and spec.architectures
