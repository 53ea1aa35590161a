"""Immutable JSON values for the typed trial: a read-only dict whose nested lists become tuples.

A trial config is frozen, so the free-form parts it carries (a model's resolved shape, DeepSpeed
overrides) must be too; ``thaw`` gives back plain dicts and lists, the form stored and hashed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn


class FrozenMap(dict):
    """A dict that refuses changes. Still a ``dict``: ``json.dumps`` and ``==`` with plain dicts work."""

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise TypeError("a trial config is frozen; build a new one (dataclasses.replace) instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(thaw(self), sort_keys=True, default=str))

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle would rebuild a dict subclass item by item through the refused __setitem__
        return (FrozenMap, (dict(self),))

    def thaw(self) -> dict[str, Any]:
        return thaw(self)


def freeze(value: Any) -> Any:
    """``value`` with every mapping a :class:`FrozenMap` and every list a tuple."""
    if isinstance(value, Mapping):
        return FrozenMap({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON types again: dicts and lists (what the store's JSON column holds)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value
