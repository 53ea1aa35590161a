"""Every op's test/benchmark cases, discovered from the ``CASES`` list of each ``kernels/<op>`` package.

An :class:`OpCase` says how to make inputs for a shape and how to call the reference and the fast
form, so one parametrized test (tests/kernels/test_kernels_against_reference.py) and one benchmark
(bench/mixers.py) cover every op without a shared list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OpCase:
    """One op as the tests and benchmarks see it.

    - ``make_inputs(batch, seq_len, heads, generator) -> dict[str, Tensor]``: fp32 inputs with
      ``requires_grad`` where gradients are checked (and realistic value ranges: decays in log space...).
    - ``reference(**inputs) -> (output, final_state)`` and ``fast(**inputs, **fast_kwargs)`` likewise;
      ``final_state`` may be None for ops without a carried state.
    - ``fast_kwargs``: e.g. ``{"chunk_size": 16}``; tests also try other chunk sizes where the op has one.
    """

    name: str
    make_inputs: Callable[..., dict[str, Any]]
    reference: Callable[..., tuple[Any, Any]]
    fast: Callable[..., tuple[Any, Any]]
    fast_kwargs: dict[str, Any] = field(default_factory=dict)
    has_chunk_size: bool = True


def all_cases() -> list[OpCase]:
    import kernels

    cases: list[OpCase] = []
    for info in sorted(pkgutil.iter_modules(kernels.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"kernels.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    return cases
