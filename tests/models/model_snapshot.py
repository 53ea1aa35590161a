"""Fingerprints of every built-in architecture, for ``test_models_golden.py``'s golden file.

A fingerprint is what a checkpoint and a planned ladder depend on: the config the sizer chooses, the
state_dict keys with their shapes and dtypes, a checksum of each tensor's initial values (seed 0), the
parameter counts, and a checksum of the logits on fixed tokens. Running a sweep resumes and branches
from checkpoints, so a refactor that moves a layer must leave all of these unchanged.

Regenerate the golden file (only when a change is meant to alter a model, and say so in the commit):

    python tests/models/model_snapshot.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

import models
from models.registry import _BUILTINS

GOLDEN_PATH = Path(__file__).with_name("golden_models.json")
VOCAB_SIZE = 256  # byte tokenizer, as the CPU ladder
SEQ_LEN = 64  # the CPU ladder's context: Griffin's window and Mega's chunk follow it
BUILD_SIZES = ("16k", "128k")  # the ends of the CPU ladder (8k..128k): built, weights fingerprinted
# Sizer choices only (no weights): the ladder's far end and beyond, and overrides the search holds fixed.
SIZER_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("8k", {}),
    ("1M", {}),
    ("30M", {"seq_len": 1024}),
    ("1B", {"seq_len": 2048}),
    ("200k", {"n_layers": 4}),
    ("200k", {"d_model": 96}),
)
PARAM_KINDS = ("total", "embedding", "non_embedding")


def _checksum(tensor: torch.Tensor) -> list[float]:
    """[sum, sum of |x|] in float64: a different init order or rule moves them far beyond rounding."""
    values = tensor.detach().to(torch.float64)
    return [values.sum().item(), values.abs().sum().item()]


def build_fingerprint(name: str, size: str) -> dict[str, Any]:
    """Config, state_dict (key -> [shape, dtype, checksum]), parameter counts and a logits checksum."""
    torch.manual_seed(0)
    model = models.build(name, size=size, vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN)
    tokens_BT = torch.arange(2 * 16).reshape(2, 16) * 37 % VOCAB_SIZE  # fixed, not from the RNG
    with torch.no_grad():
        logits_BTV = model(tokens_BT)
    return {
        "config": model.config.to_dict(),
        "num_params": {kind: model.num_params(kind=kind) for kind in PARAM_KINDS},
        "state_dict": {
            key: [list(value.shape), str(value.dtype).removeprefix("torch."), _checksum(value)]
            for key, value in model.state_dict().items()
        },
        "logits": _checksum(logits_BTV),
    }


def sizer_case_id(size: str, overrides: dict[str, Any]) -> str:
    return ",".join([size, *(f"{key}={value}" for key, value in overrides.items())])


def sizer_choices(name: str) -> dict[str, dict[str, Any]]:
    """The config the sizer resolves for each of ``SIZER_CASES`` (no weights built)."""
    return {
        sizer_case_id(size, overrides): models.resolve_config(
            name, size=size, vocab_size=VOCAB_SIZE, **overrides
        ).to_dict()
        for size, overrides in SIZER_CASES
    }


def snapshot(names: list[str]) -> dict[str, Any]:
    return {
        name: {
            "built": {size: build_fingerprint(name, size) for size in BUILD_SIZES},
            "sizer": sizer_choices(name),
        }
        for name in names
    }


def to_json(value: Any, indent: str = "") -> str:
    """JSON with one line per leaf list (a tensor's [shape, dtype, checksum]): short, reviewable diffs."""
    if not isinstance(value, dict):
        return json.dumps(value)
    inner = indent + " "
    items = [f"{inner}{json.dumps(key)}: {to_json(value[key], inner)}" for key in value]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"


def main() -> None:
    torch.set_num_threads(1)  # the golden test runs single-threaded too (tests/models/conftest.py)
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN_PATH
    names = sorted(_BUILTINS)  # built-ins only: a plug-in installed here is not ceiling's to pin
    path.write_text(to_json(snapshot(names)) + "\n")
    print(f"wrote {path} ({', '.join(names)})")


if __name__ == "__main__":
    main()
