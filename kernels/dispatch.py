"""One place that picks the implementation of a token-mixing op for a device.

Models call ``dispatch.get("chunk_gla", q.device)(q, k, v, g, ...)`` instead of importing an op, so the
same model runs the PyTorch chunked form on CPU and the Triton kernels on a GPU.

Backends (every one exposes the op under its public name, with the same signature and results):

- ``"torch"``: ``kernels.<pkg>.<op>`` -- the PyTorch forms (the CPU path; also works on CUDA).
- ``"triton"``: ``kernels.<pkg>.triton.<op>`` -- Triton kernels, imported only when first asked for, so
  importing ``kernels`` or ``models`` never imports triton.
- ``"fla"``: ``kernels.<pkg>.fla.<op>`` -- adapters to the optional flash-linear-attention package, for
  the ops it covers (a comparison point for the benchmarks).

Selection: ``CEILING_KERNELS=torch|triton|fla`` forces a backend (and raises :class:`BackendUnavailable`
saying why when it cannot run). Otherwise CUDA tensors get ``"triton"`` when triton imports, and
everything else gets ``"torch"``; an op whose Triton module is not written yet falls back to ``"torch"``
by default (never when triton was forced). ``TRITON_INTERPRET=1`` lets a forced ``triton`` run on CPU
through Triton's interpreter (how the kernels are tested without a GPU).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Callable
from typing import Any

ENV_VAR = "CEILING_KERNELS"
BACKENDS = ("torch", "triton", "fla")

# public op name -> package under kernels/ that holds it
OPS: dict[str, str] = {
    "chunk_gla": "gla",
    "chunk_gated_delta_rule": "delta",
    "chunk_generalized_delta_rule": "delta",
    "linear_scan": "linear_scan",
    "selective_scan": "selective_scan",
}


class BackendUnavailable(RuntimeError):
    """A requested backend cannot run here; the message says why and how to fix it."""


def _device_type(device: Any) -> str:
    """``"cuda"``, ``"cpu"``, ... from a torch.device, a string like ``"cuda:0"`` or a tensor."""
    if hasattr(device, "device") and not isinstance(device, str):  # a tensor
        device = device.device
    return device.type if hasattr(device, "type") else str(device).split(":")[0]


def _interpreter_on() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.cache
def _triton_import_error() -> str | None:
    """None when triton imports, else the reason (cached: importing triton takes about a second)."""
    try:
        import triton  # noqa: F401
    except Exception as error:  # ImportError, or a broken install raising something else
        return f"{type(error).__name__}: {error}"
    return None


@functools.cache
def _fla_import_error() -> str | None:
    try:
        import fla  # noqa: F401
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def _requested() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    if value not in BACKENDS:
        raise BackendUnavailable(f"{ENV_VAR}={value!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return value


def backend_for(device: Any) -> str:
    """The backend ops on ``device`` use: ``$CEILING_KERNELS`` when set, else ``"triton"`` on CUDA when
    triton imports, else ``"torch"``. Does not check that a forced backend can run (``get`` does)."""
    requested = _requested()
    if requested is not None:
        return requested
    if _device_type(device) == "cuda" and _triton_import_error() is None:
        return "triton"
    return "torch"


@functools.cache
def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _check_can_run(backend: str, device_type: str) -> None:
    """Raise :class:`BackendUnavailable` with the reason when ``backend`` cannot run on this device."""
    if backend == "torch":
        return
    if backend == "triton":
        reason = _triton_import_error()
        if reason is not None:
            raise BackendUnavailable(
                f"backend 'triton' needs the triton package, which does not import ({reason}); "
                f"pip install 'ceiling[gpu]', or unset {ENV_VAR} to use the PyTorch kernels"
            )
    if backend == "fla":
        reason = _fla_import_error()
        if reason is not None:
            raise BackendUnavailable(
                f"backend 'fla' needs flash-linear-attention, which does not import ({reason}); "
                f"pip install flash-linear-attention, or set {ENV_VAR}=triton or torch"
            )
    if device_type != "cuda" and not _interpreter_on():
        raise BackendUnavailable(
            f"backend {backend!r} runs Triton kernels, which need a CUDA device (got a {device_type!r} "
            f"tensor) or TRITON_INTERPRET=1 (the slow CPU interpreter, for tests); "
            f"set {ENV_VAR}=torch or unset it to use the PyTorch kernels"
        )


@functools.cache
def _load(op_name: str, backend: str) -> Callable[..., Any]:
    package = f"kernels.{OPS[op_name]}"
    if backend == "torch":
        return getattr(importlib.import_module(package), op_name)
    module_name = f"{package}.{backend}"
    if not _has_module(module_name):
        where = f"{module_name.replace('.', '/')}.py does not exist"
        if backend == "fla":
            raise BackendUnavailable(
                f"op {op_name!r} is not covered by backend 'fla' ({where}); set {ENV_VAR}=torch or triton"
            )
        raise BackendUnavailable(
            f"op {op_name!r} has no Triton kernel yet ({where}); set {ENV_VAR}=torch or unset it"
        )
    module = importlib.import_module(module_name)
    function = getattr(module, op_name, None)
    if function is None:
        covered = sorted(name for name in OPS if callable(getattr(module, name, None)))
        raise BackendUnavailable(
            f"op {op_name!r} is not covered by backend {backend!r} ({module_name} offers: "
            f"{', '.join(covered) or 'nothing'}); set {ENV_VAR}=torch or triton"
        )
    return function


def get(op_name: str, device: Any) -> Callable[..., Any]:
    """The function that runs ``op_name`` (its public name, e.g. ``"chunk_gla"``) on ``device``.

    Raises ``KeyError`` for an unknown op and :class:`BackendUnavailable` (saying why) when the
    backend forced by ``$CEILING_KERNELS`` cannot run. Cheap enough to call on every forward.
    """
    if op_name not in OPS:
        raise KeyError(f"unknown op {op_name!r}; known: {', '.join(OPS)}")
    requested = _requested()
    backend = backend_for(device) if requested is None else requested
    if backend == "triton" and requested is None and not _has_module(f"kernels.{OPS[op_name]}.triton"):
        backend = "torch"  # by default an op without a Triton kernel yet keeps its PyTorch form
    _check_can_run(backend, _device_type(device))
    return _load(op_name, backend)


__all__ = ["BACKENDS", "ENV_VAR", "OPS", "BackendUnavailable", "backend_for", "get"]
