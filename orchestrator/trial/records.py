"""Dict <-> dataclass for the trial's parts, strict both ways so the stored form cannot drift.

A part's ``to_dict`` writes exactly the keys today's stored configs have (a field marked
``OMIT_NONE`` is left out while None, as those configs leave it out); ``from_dict`` refuses a key
no field takes, because silently dropping one would change the trial id on the way back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from orchestrator.trial.frozen import freeze, thaw

OMIT_NONE = {"omit_none": True}  # dataclass field metadata: no key at all while the value is None

R = TypeVar("R")


def record_to_dict(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if value is None and item.metadata.get("omit_none"):
            continue
        out[item.name] = thaw(value)
    return out


def record_from_dict(cls: type[R], data: Mapping[str, Any], where: str) -> R:
    names = {item.name for item in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a trial config part takes {sorted(names)}")
    try:
        return cls(**{key: freeze(value) for key, value in data.items()})
    except TypeError as exc:  # a required key is missing
        raise ValueError(f"{where}: {exc}") from None
