"""Golden fingerprints of every built-in architecture (``golden_models.json``, see ``model_snapshot.py``).

Sweeps resume and branch from checkpoints and plan ladders from the sizer's choices, so moving a layer
or rewriting the sizing setup must not change, for any architecture: the config the sizer picks, the
state_dict keys (names and order), shapes and dtypes, the initial values under a fixed seed, the
parameter counts, or the logits. A change that is meant to alter a model regenerates the golden file
(``python tests/models/model_snapshot.py``) and says so in its commit.
"""

from __future__ import annotations

import json

import pytest

from models.registry import _BUILTINS
from tests.models.model_snapshot import GOLDEN_PATH, build_fingerprint, sizer_choices

GOLDEN = json.loads(GOLDEN_PATH.read_text())
BUILT_CASES = [(name, size) for name in sorted(GOLDEN) for size in GOLDEN[name]["built"]]
# Checksums are float64 sums: equal to rounding on any machine, far apart after an init change.
# Orthogonal inits (RWKV) go through LAPACK, and the logits through BLAS, so allow last-bit noise.
VALUE_TOLERANCE = {"rel": 1e-6, "abs": 1e-6}
LOGITS_TOLERANCE = {"rel": 1e-5, "abs": 1e-5}


def _round_trip(value):
    """As stored in JSON (tuples become lists), so configs compare field by field."""
    return json.loads(json.dumps(value))


def test_golden_file_covers_every_builtin():
    assert sorted(GOLDEN) == sorted(_BUILTINS), (
        "a built-in architecture was added or removed: regenerate with python tests/models/model_snapshot.py"
    )


@pytest.mark.parametrize("name, size", BUILT_CASES, ids=[f"{n}-{s}" for n, s in BUILT_CASES])
def test_built_model_matches_golden(name, size):
    golden = GOLDEN[name]["built"][size]
    actual = _round_trip(build_fingerprint(name, size))
    assert actual["config"] == golden["config"]
    assert actual["num_params"] == golden["num_params"]
    # keys in order: a checkpoint's state_dict must load, and the init order shows in the key order
    assert list(actual["state_dict"]) == list(golden["state_dict"])
    for key, (shape, dtype, checksum) in golden["state_dict"].items():
        actual_shape, actual_dtype, actual_checksum = actual["state_dict"][key]
        assert (actual_shape, actual_dtype) == (shape, dtype), key
        assert actual_checksum == pytest.approx(checksum, **VALUE_TOLERANCE), f"initial values of {key}"
    assert actual["logits"] == pytest.approx(golden["logits"], **LOGITS_TOLERANCE)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_sizer_choices_match_golden(name):
    assert _round_trip(sizer_choices(name)) == GOLDEN[name]["sizer"]
