"""Named DeepSpeed presets: ``deepspeed: {preset: zero2-bf16}`` in a sweep file.

Each preset is a JSON file of DeepSpeed config blocks in ``orchestrator/presets/deepspeed/`` (shipped
as package data, so a worker on a cluster finds it without the repository; ``clusters/deepspeed/``
holds identical copies to read and copy from). A preset merges *under* the sweep's explicit settings:

    ceiling's own keys (batch sizes, clipping)  <  preset  <  deepspeed.zero_stage  <  deepspeed.overrides

and ``bf16.enabled`` always follows ``training.precision``. Presets never set the keys ceiling derives
from the sweep (batch sizes, gradient clipping, optimizer, scheduler): a preset that does is refused.
A preset is identified by its name in a trial's config (and so in its id): change what a preset does
by adding a new name, not by editing a shipped file.

Imports nothing heavy: the spec validator calls :func:`deepspeed_preset` for every sweep file.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent / "deepspeed"
PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Keys ceiling computes from the sweep (training.*, resources.*): a preset must not carry them.
OWNED_KEYS = frozenset(
    {
        "train_batch_size",
        "train_micro_batch_size_per_gpu",
        "gradient_accumulation_steps",
        "gradient_clipping",
        "optimizer",
        "scheduler",
        "fp16",
        "amp",
    }
)


class PresetError(ValueError):
    """An unknown or malformed preset; the message lists the known presets."""


def deepspeed_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


@cache
def _load(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.json"
    try:
        blocks = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PresetError(f"DeepSpeed preset {name!r} ({path}) is not valid JSON: {exc}") from None
    if not isinstance(blocks, dict):
        raise PresetError(f"DeepSpeed preset {name!r} ({path}) must be a JSON object of config blocks")
    owned = sorted(OWNED_KEYS & blocks.keys())
    if owned:
        raise PresetError(
            f"DeepSpeed preset {name!r} sets {owned}; ceiling derives those from training.* and resources.*"
        )
    return {k: v for k, v in blocks.items() if not k.startswith("_")}  # "_description" is documentation


def deepspeed_preset(name: str) -> dict[str, Any]:
    """The DeepSpeed config blocks of preset ``name`` (a fresh copy); :class:`PresetError` if unknown."""
    if (
        not isinstance(name, str)
        or not PRESET_NAME.match(name)
        or not (PRESET_DIR / f"{name}.json").is_file()
    ):
        raise PresetError(f"unknown DeepSpeed preset {name!r}; known: {', '.join(deepspeed_presets())}")
    return json.loads(json.dumps(_load(name)))


def preset_zero_stage(name: str) -> int:
    """The ZeRO stage a preset selects (0 if it has no ``zero_optimization.stage``)."""
    return int(deepspeed_preset(name).get("zero_optimization", {}).get("stage", 0))


def describe(name: str) -> str:
    """The preset's one-paragraph description (its ``_description`` field)."""
    deepspeed_preset(name)
    return str(json.loads((PRESET_DIR / f"{name}.json").read_text()).get("_description", ""))


def merge_preset(config: dict[str, Any], name: str) -> dict[str, Any]:
    """``config`` with preset ``name`` merged over it one block deep (a preset block updates, not replaces)."""
    merged = dict(config)
    for key, value in deepspeed_preset(name).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
