"""Bytes of decode state: measured from the tensors a model holds, and the Transformer's analytic count.

``state_bytes`` walks any state object (``models.lm.DecodeState``, dicts, lists, tuples, dataclasses) and
adds up the bytes of every distinct tensor it reaches; ``kv_cache_bytes_analytic`` is the textbook count
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
    """Bytes held by the tensors of ``state`` (for a batch: all its sequences together).

    A tensor counts its own elements (``numel x element_size``); a tensor reached twice (the same object,
    or an alias with the same data pointer, shape and strides) counts once, so a state that shares a
    tensor between layers is not double counted. A reserved but unused tail (a KV cache grown ahead of
    the context) counts: it is memory the state holds.
    """
    seen: set[tuple[int, tuple[int, ...], tuple[int, ...], torch.dtype]] = set()
    total = 0
    for tensor in _tensors(state):
        key = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
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
