"""ceiling's architectures: a registry, shared blocks, one file per mixer family, accounting and sizing.

Public API (light to import: torch is only loaded when a model is resolved or built)::

    models.available() -> list[str]
    models.build(name, *, size, vocab_size, **overrides) -> nn.Module
    models.resolve_config(name, *, size, vocab_size, **overrides) -> frozen config dataclass
    models.describe(name, *, size, vocab_size, seq_len=None, **overrides) -> dict
    models.from_config(name, config) -> nn.Module
    models.parse_size("1.2M") -> 1200000
"""

from models.api import build, describe, from_config, resolve_config
from models.registry import (
    ENTRY_POINT_GROUP,
    Architecture,
    UnknownArchitecture,
    UnknownOverride,
    available,
    get,
    register,
)
from models.sizing import format_size, parse_size

__all__ = [
    "ENTRY_POINT_GROUP",
    "Architecture",
    "UnknownArchitecture",
    "UnknownOverride",
    "available",
    "build",
    "describe",
    "format_size",
    "from_config",
    "get",
    "parse_size",
    "register",
    "resolve_config",
]
