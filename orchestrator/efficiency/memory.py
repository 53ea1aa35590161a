"""Bytes of decode state: measured from the tensors a model holds, and the Transformer's analytic count.

``state_bytes`` walks any state object (``models.lm.DecodeState``, dicts, lists, tuples, dataclasses) and
adds up the bytes of every distinct storage its tensors keep alive; ``kv_cache_bytes_analytic`` is the textbook count
``layers x 2 (keys, values) x kv heads x head_dim x L x bytes per number``, which the tests hold equal to
what ``state_bytes`` measures after a Transformer's prefill.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor inside ``value`` (nested tensors, tuples, lists, dicts, dataclasses), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for item in dataclasses.fields(value) for t in _tensors(getattr(value, item.name))]
    return []  # ints (the position), None, strings: not state memory


def state_bytes(state: Any) -> int:
    """Bytes of memory the tensors of ``state`` keep alive (for a batch: all its sequences together).

    Counted per storage, not per tensor: a view keeps its whole storage alive, so a decode history
    sliced out of a prefill's ``[B, T, D]`` activations would count all ``T`` positions (which is what it
    costs; the models copy such slices for that reason), and a storage reached through several tensors
    (the same object, aliases, views into one buffer) counts once. A reserved but unused tail (a KV
    cache grown ahead of the context) counts too: it is memory the state holds.
    """
    seen: set[int] = set()
    total = 0
    for tensor in _tensors(state):
        storage = tensor.untyped_storage()
        if storage.nbytes() and storage.data_ptr() in seen:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    return total


def kv_cache_bytes_analytic(model: Any, context_len: int, batch: int = 1) -> int:
    """The Transformer's KV cache after ``context_len`` tokens for ``batch`` sequences:
    ``n_layers x 2 x n_kv_heads x head_dim x context_len x bytes per number x batch``.

    Bytes per number are those of the model's parameters (the cache holds keys and values in the
    model's dtype). Raises ``ValueError`` for a model without attention heads in its config.
    """
    config = getattr(model, "config", None)
    missing = [name for name in ("n_layers", "n_kv_heads", "head_dim") if not hasattr(config, name)]
    if missing:
        raise ValueError(
            f"kv_cache_bytes_analytic needs a Transformer (config fields n_layers, n_kv_heads, head_dim); "
            f"{type(config).__name__} lacks {', '.join(missing)}: use state_bytes on its decode state instead"
        )
    for name, value in (("context_len", context_len), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    bytes_per_number = next(model.parameters()).element_size()
    per_token = config.n_layers * 2 * config.n_kv_heads * config.head_dim * bytes_per_number
    return per_token * context_len * batch
