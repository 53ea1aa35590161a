"""Every op in ``kernels.catalog.all_cases()``: the fast form against the fp32 reference on outputs, final
states and the gradient of every input, by relative RMS error, for several shapes (lengths not divisible
by the chunk size included) and, where the op has one, several chunk sizes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from kernels.catalog import OpCase, all_cases

REL_RMS_TOL = 5e-3
SHAPES = [(2, 37, 2), (1, 64, 1), (2, 5, 1)]  # (batch, seq_len, heads)
EXTRA_CHUNK_SIZES = [8, 32]

CASES = all_cases()


def rel_rms_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected|| (both RMS over all elements); 0 when both are zero."""
    actual, expected = actual.double(), expected.double()
    denominator = expected.pow(2).mean().sqrt().item()
    numerator = (actual - expected).pow(2).mean().sqrt().item()
    if denominator == 0.0:
        return numerator
    return numerator / denominator


def _tensors(value: Any) -> list[torch.Tensor]:
    """Flatten an output or a final state (tensor, tuple/list of tensors, or None) to its tensors."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in _tensors(item)]


def _run(case: OpCase, fn, inputs: dict[str, Any], kwargs: dict[str, Any], seed: int):
    """Outputs, final state and input gradients of ``fn`` on fresh leaf copies of ``inputs``."""
    leaves = {
        name: value.detach().clone().requires_grad_(value.requires_grad)
        if isinstance(value, torch.Tensor)
        else value
        for name, value in inputs.items()
    }
    output, final_state = fn(**leaves, **kwargs)
    produced = _tensors(output) + _tensors(final_state)
    generator = torch.Generator().manual_seed(seed)
    # weights drawn on CPU (same numbers on every device), then moved to the output's device (CUDA tests)
    loss = sum(
        (t.float() * torch.randn(t.shape, generator=generator).to(t.device)).sum()
        for t in produced
        if t.numel()
    )
    wanted = [name for name, v in leaves.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    grads = {}
    if wanted and isinstance(loss, torch.Tensor) and loss.requires_grad:
        values = torch.autograd.grad(loss, [leaves[n] for n in wanted], allow_unused=True)
        grads = dict(zip(wanted, values, strict=True))
    return _tensors(output), _tensors(final_state), grads


def _params():
    for case in CASES:
        chunk_sizes = [None] + (EXTRA_CHUNK_SIZES if case.has_chunk_size else [])
        for batch, seq_len, heads in SHAPES:
            for chunk_size in chunk_sizes:
                chunk_id = "" if chunk_size is None else f"-C{chunk_size}"
                yield pytest.param(
                    case,
                    (batch, seq_len, heads),
                    chunk_size,
                    id=f"{case.name}-B{batch}T{seq_len}H{heads}{chunk_id}",
                )


@pytest.mark.parametrize("case, shape, chunk_size", list(_params()))
def test_fast_matches_reference(case: OpCase, shape, chunk_size):
    batch, seq_len, heads = shape
    inputs = case.make_inputs(batch, seq_len, heads, torch.Generator().manual_seed(seq_len))
    kwargs = dict(case.fast_kwargs)
    if chunk_size is not None:
        kwargs["chunk_size"] = chunk_size
    ref_out, ref_state, ref_grads = _run(case, case.reference, inputs, {}, seed=1)
    out, state, grads = _run(case, case.fast, inputs, kwargs, seed=1)

    assert len(out) == len(ref_out) and len(state) == len(ref_state)
    for name, actual, expected in [("output", a, e) for a, e in zip(out, ref_out, strict=True)] + [
        ("final state", a, e) for a, e in zip(state, ref_state, strict=True)
    ]:
        assert actual.shape == expected.shape, f"{name}: {tuple(actual.shape)} != {tuple(expected.shape)}"
        assert torch.isfinite(actual).all(), f"{name} has non-finite values"
        error = rel_rms_error(actual, expected)
        assert error <= REL_RMS_TOL, f"{name}: relative RMS error {error:.2e} > {REL_RMS_TOL}"
    for name, expected in ref_grads.items():
        actual = grads.get(name)
        if expected is None:
            assert actual is None or not actual.abs().any(), f"grad {name}: reference has none"
            continue
        assert actual is not None, f"grad {name}: the fast form gives none"
        error = rel_rms_error(actual, expected)
        assert error <= REL_RMS_TOL, f"grad {name}: relative RMS error {error:.2e} > {REL_RMS_TOL}"
