"""The architecture registry: names -> ``Architecture`` records, built-ins plus entry-point plug-ins.

Built-in architectures are listed in ``_BUILTINS`` as ``"module:attribute"`` and imported only when first
asked for, so ``import models`` and ``models.available()`` stay light (no torch import).

Third-party plug-ins declare an entry point in the group ``ceiling.architectures``::

    [project.entry-points."ceiling.architectures"]
    my_arch = "my_package.my_arch:ARCHITECTURE"      # an Architecture record, or
    my_archs = "my_package:register_architectures"   # a callable returning a record / list of records
                                                     # (or calling models.register itself)

Entry points are loaded once, on the first ``available()`` / ``get()`` / ``build()``. A plug-in that fails
to load, or reuses a taken name, is skipped with a warning rather than breaking every other architecture.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

ENTRY_POINT_GROUP = "ceiling.architectures"

_BUILTINS: dict[str, str] = {
    "transformer": "models.transformer:ARCHITECTURE",
    "hawk": "models.hawk:ARCHITECTURE",
    "griffin": "models.griffin:ARCHITECTURE",
    "mega": "models.mega:ARCHITECTURE",
    "gated_deltanet": "models.gated_deltanet:ARCHITECTURE",
    "rwkv7": "models.rwkv7:ARCHITECTURE",
    "retnet": "models.retnet:ARCHITECTURE",
    "gla": "models.gla:ARCHITECTURE",
    "rwkv6": "models.rwkv6:ARCHITECTURE",
    "mamba2": "models.mamba2:ARCHITECTURE",
    "mamba": "models.mamba:ARCHITECTURE",
    "s4d": "models.s4d:ARCHITECTURE",
}


class UnknownArchitecture(KeyError, ValueError):
    """An architecture name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownOverride(TypeError, ValueError):
    """A keyword override that is not a field of the architecture's config; lists the valid fields."""


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """Everything the rest of ceiling needs to know about one architecture.

    - ``config_class``: a frozen keyword-only dataclass (subclass of ``models.lm.ModelConfig``).
    - ``build(config) -> nn.Module``: the model for a resolved config (respects the active torch device,
      so ``with torch.device("meta"): build(config)`` allocates nothing).
    - ``size_config(target, *, vocab_size, overrides) -> config``: the sizing rule: a config with about
      ``target`` non-embedding parameters whose fields include every entry of ``overrides``.
    """

    name: str
    config_class: type
    build: Callable[[Any], Any]
    size_config: Callable[..., Any]
    description: str
    paper: str = ""

    def __post_init__(self) -> None:
        if (
            not self.name
            or not self.name.replace("_", "").replace("-", "").isalnum()
            or self.name != self.name.lower()
        ):
            raise ValueError(
                f"architecture name must be lower-case letters, digits, '-' or '_': {self.name!r}"
            )
        if not dataclasses.is_dataclass(self.config_class):
            raise TypeError(f"{self.name}: config_class must be a dataclass, got {self.config_class!r}")


class Registry:
    """Name -> Architecture. ``models.available()`` etc. use the module-level ``REGISTRY``."""

    def __init__(
        self, builtins: Mapping[str, str] | None = None, entry_point_group: str | None = ENTRY_POINT_GROUP
    ):
        self._builtins = dict(_BUILTINS if builtins is None else builtins)
        self._entry_point_group = entry_point_group
        self._architectures: dict[str, Architecture] = {}
        self._plugins_loaded = False

    # -- registration ---------------------------------------------------------------------------------

    def register(self, architecture: Architecture) -> Architecture:
        """Add ``architecture``; re-registering the identical record is a no-op, a clash is an error."""
        if not isinstance(architecture, Architecture):
            raise TypeError(f"register() takes an Architecture record, got {type(architecture).__name__}")
        existing = self._architectures.get(architecture.name)
        if existing is not None and existing != architecture:
            raise ValueError(f"architecture {architecture.name!r} is already registered")
        if (
            existing is None
            and architecture.name in self._builtins
            and not self._is_builtin_record(architecture)
        ):
            raise ValueError(f"architecture name {architecture.name!r} is taken by a built-in")
        self._architectures[architecture.name] = architecture
        return architecture

    def _is_builtin_record(self, architecture: Architecture) -> bool:
        module_name, _, attribute = self._builtins[architecture.name].partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute, None) is architecture

    # -- lookup ---------------------------------------------------------------------------------------

    def available(self) -> list[str]:
        self._load_plugins()
        return sorted(set(self._builtins) | set(self._architectures))

    def get(self, name: str) -> Architecture:
        self._load_plugins()
        if name not in self._architectures and name in self._builtins:
            module_name, _, attribute = self._builtins[name].partition(":")
            architecture = getattr(importlib.import_module(module_name), attribute)
            if architecture.name != name:
                raise RuntimeError(
                    f"built-in {self._builtins[name]} is named {architecture.name!r}, not {name!r}"
                )
            self._architectures[name] = architecture
        if name not in self._architectures:
            raise UnknownArchitecture(f"unknown architecture {name!r}; known: {', '.join(self.available())}")
        return self._architectures[name]

    # -- plug-ins -------------------------------------------------------------------------------------

    def _entry_points(self) -> Iterable[Any]:
        if self._entry_point_group is None:
            return ()
        return metadata.entry_points(group=self._entry_point_group)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # set first: a plug-in calling available() must not recurse
        for entry_point in self._entry_points():
            label = f"{entry_point.name} = {entry_point.value}"
            try:
                loaded = entry_point.load()
                records = loaded() if callable(loaded) and not isinstance(loaded, Architecture) else loaded
                if records is None:  # the callable registered its architectures itself
                    continue
                for record in [records] if isinstance(records, Architecture) else list(records):
                    self.register(record)
            except Exception as error:  # a broken plug-in must not take the others down
                warnings.warn(
                    f"ceiling: skipping architecture plug-in '{label}' ({ENTRY_POINT_GROUP}): "
                    f"{type(error).__name__}: {error}",
                    RuntimeWarning,
                    stacklevel=2,
                )


REGISTRY = Registry()


def register(architecture: Architecture) -> Architecture:
    """Register an architecture in the default registry (for plug-ins and notebooks)."""
    return REGISTRY.register(architecture)


def available() -> list[str]:
    """Registered architecture names, sorted."""
    return REGISTRY.available()


def get(name: str) -> Architecture:
    """The ``Architecture`` record for ``name``; ``UnknownArchitecture`` lists the known names."""
    return REGISTRY.get(name)
