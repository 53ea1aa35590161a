"""The public entry points: resolve a (name, size, overrides) to a config, build it, describe it.

``resolve_config`` never touches weights (the planner uses it); ``describe`` builds on the ``meta``
device, so accounting for a 7B model costs no memory and well under a second.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from models.registry import UnknownOverride, get
from models.sizing import parse_size


def _check_overrides(name: str, config_class: type, overrides: dict[str, Any]) -> None:
    valid = [f.name for f in dataclasses.fields(config_class) if f.name != "vocab_size"]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UnknownOverride(
            f"unknown override(s) for architecture {name!r}: {', '.join(unknown)}; valid fields: {', '.join(valid)}"
        )


def resolve_config(name: str, *, size: int | float | str, vocab_size: int, **overrides: Any) -> Any:
    """The frozen config ``build`` would use: sized to ``size`` non-embedding parameters, then with
    every override applied. The sizing search holds the overrides fixed while it picks the remaining
    shape, so e.g. ``n_layers=4`` gives the width that best hits ``size`` at depth 4."""
    architecture = get(name)
    _check_overrides(name, architecture.config_class, overrides)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    target = parse_size(size)
    config = architecture.size_config(target, vocab_size=vocab_size, overrides=overrides)
    if any(getattr(config, key) != value for key, value in overrides.items()):
        config = dataclasses.replace(config, **overrides)
    return config


def build(name: str, *, size: int | float | str, vocab_size: int, **overrides: Any):
    """A freshly initialised model of architecture ``name`` with about ``size`` non-embedding params.

    ``size``: int or a string like "50k", "1.2M", "3B". ``overrides`` replace config fields (an unknown
    one raises ``UnknownOverride`` listing the valid fields). Builds on torch's current default device.
    """
    return get(name).build(resolve_config(name, size=size, vocab_size=vocab_size, **overrides))


def from_config(name: str, config: Any):
    """Build architecture ``name`` from an already resolved config (instance or ``to_dict()`` output)."""
    architecture = get(name)
    if isinstance(config, dict):
        _check_overrides(
            name, architecture.config_class, {k: v for k, v in config.items() if k != "vocab_size"}
        )
        config = architecture.config_class(**config)
    elif not isinstance(config, architecture.config_class):
        raise TypeError(f"{name} needs a {architecture.config_class.__name__}, got {type(config).__name__}")
    return architecture.build(config)


def describe(
    name: str, *, size: int | float | str, vocab_size: int, seq_len: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """Accounting for the resolved model, built on the meta device (no memory, no init cost).

    Keys: architecture, target_size, total_params, embedding_params, non_embedding_params,
    size_rel_error (non_embedding / target - 1), seq_len, flops_per_token (training, exact, see
    ``LanguageModel.flops_per_token``), flops_per_token_6n (6 * non_embedding, the Kaplan shorthand),
    state_size (numbers per sequence at inference after seq_len tokens), config (dict).
    ``seq_len`` (if given) is also set in the config.
    """
    import torch

    if seq_len is not None:
        overrides["seq_len"] = seq_len
    config = resolve_config(name, size=size, vocab_size=vocab_size, **overrides)
    with torch.device("meta"):
        model = get(name).build(config)
    target = parse_size(size)
    non_embedding = model.num_params("non_embedding")
    return {
        "architecture": name,
        "target_size": target,
        "total_params": model.num_params("total"),
        "embedding_params": model.num_params("embedding"),
        "non_embedding_params": non_embedding,
        "size_rel_error": non_embedding / target - 1.0,
        "seq_len": config.seq_len,
        "flops_per_token": model.flops_per_token(config.seq_len),
        "flops_per_token_6n": 6 * non_embedding,
        "state_size": model.state_size(config.seq_len),
        "config": config.to_dict(),
    }
