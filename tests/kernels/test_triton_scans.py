"""The Triton scans (kernels/linear_scan/triton.py, kernels/selective_scan/triton.py) against the fp32
references: outputs, final states and every input gradient by relative RMS, odd lengths spanning
several time tiles, with and without an initial state (and ``D``), a broadcast decay.

Without CUDA the kernels run on CPU under the Triton interpreter (tiny shapes; the variable must be set
before triton is imported); with CUDA they run compiled, and the larger and bf16 tests run too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CUDA = torch.cuda.is_available()
# as in test_triton_gla.py: the interpreter must be on before triton is imported; if another module
# imported triton first, the interpreter checks run in a fresh process (test_in_a_fresh_process)
LATE = not CUDA and "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"
if not CUDA and not LATE:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="triton is not installed (the optional kernels extra)")

sys.path.insert(0, str(Path(__file__).parent))
from test_kernels_against_reference import _run, rel_rms_error  # noqa: E402

import kernels.linear_scan as linear_scan_pkg  # noqa: E402
import kernels.selective_scan as selective_scan_pkg  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
REL_RMS_TOL = 5e-3


def _triton_op(name: str):
    if LATE:
        pytest.skip("triton was imported before TRITON_INTERPRET=1: checked by test_in_a_fresh_process")
    if name == "linear_scan":
        from kernels.linear_scan import triton as module
    else:
        from kernels.selective_scan import triton as module
    return getattr(module, name)


def _inputs(pkg, B: int, T: int, H: int, drop=(), dtype=torch.float32, seed: int = 0) -> dict:
    made = pkg.make_inputs(B, T, H, torch.Generator().manual_seed(seed + T))
    return {
        name: None if name in drop else value.detach().to(DEVICE, dtype).requires_grad_(True)
        for name, value in made.items()
    }


def _compare(pkg, name: str, inputs: dict, chunk_size: int, tol: float = REL_RMS_TOL) -> None:
    """Triton vs the reference on outputs, final state and the gradient of every given input. The
    reference sees the same (possibly bf16-rounded) numbers, in fp32."""
    reference = pkg.CASES[0].reference
    ref_inputs = {
        n: None if v is None else v.detach().float().requires_grad_(True) for n, v in inputs.items()
    }
    ref_out, ref_state, ref_grads = _run(None, reference, ref_inputs, {}, seed=1)
    out, state, grads = _run(None, _triton_op(name), inputs, {"chunk_size": chunk_size}, seed=1)
    assert out[0].dtype == torch.float32 and state[0].dtype == torch.float32
    assert out[0].shape == ref_out[0].shape and state[0].shape == ref_state[0].shape
    errors = {
        "output": rel_rms_error(out[0], ref_out[0]),
        "final state": rel_rms_error(state[0], ref_state[0]),
    }
    assert set(grads) == set(ref_grads)
    for n in ref_grads:
        assert grads[n].shape == inputs[n].shape and grads[n].dtype == inputs[n].dtype, n
        errors[f"grad {n}"] = rel_rms_error(grads[n].float(), ref_grads[n])
    bad = {n: f"{e:.2e}" for n, e in errors.items() if not e <= tol}
    assert not bad, f"relative RMS errors above {tol}: {bad}"


# (B, T, heads, chunk_size, inputs left out): T = 37 is two full tiles of 16 and a partial one
LINEAR_SCAN_SHAPES = [(2, 37, 1, 16, ()), (1, 5, 1, 64, ("h0_BN",)), (1, 40, 1, 8, ())]
# the interpreter's scan runs the combine once per element (seconds per [T, E, N] tile): small time tiles
SELECTIVE_SCAN_SHAPES = [(1, 37, 1, 8, ()), (2, 7, 1, 4, ("h0_BEN",)), (1, 23, 1, 4, ("D_E", "h0_BEN"))]


def _ids(shapes):
    return [f"B{b}T{t}C{c}" + "".join(f"-no_{d.split('_')[0]}" for d in drop) for b, t, _, c, drop in shapes]


@pytest.mark.parametrize("B, T, H, chunk, drop", LINEAR_SCAN_SHAPES, ids=_ids(LINEAR_SCAN_SHAPES))
def test_triton_linear_scan_matches_reference(B, T, H, chunk, drop):
    _compare(linear_scan_pkg, "linear_scan", _inputs(linear_scan_pkg, B, T, H, drop), chunk)


def test_triton_linear_scan_broadcast_decay_gets_its_gradient_at_its_own_shape():
    """Mega's EMA passes one decay per channel, ``[1, 1, N]``."""
    inputs = _inputs(linear_scan_pkg, 2, 19, 1, drop=("h0_BN",))
    inputs["log_a"] = inputs["log_a"][:1, :1].detach().clone().requires_grad_(True)
    _compare(linear_scan_pkg, "linear_scan", inputs, 8)


def test_triton_linear_scan_continues_from_its_carried_state():
    linear_scan = _triton_op("linear_scan")
    x = {n: v.detach() for n, v in _inputs(linear_scan_pkg, 1, 30, 1).items()}
    whole, last = linear_scan(x["log_a"], x["b_BTN"], x["h0_BN"], chunk_size=8)
    first, carried = linear_scan(x["log_a"][:, :13], x["b_BTN"][:, :13], x["h0_BN"], chunk_size=8)
    second, last2 = linear_scan(x["log_a"][:, 13:], x["b_BTN"][:, 13:], carried, chunk_size=8)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(last2, last)


@pytest.mark.parametrize("B, T, H, chunk, drop", SELECTIVE_SCAN_SHAPES, ids=_ids(SELECTIVE_SCAN_SHAPES))
def test_triton_selective_scan_matches_reference(B, T, H, chunk, drop):
    _compare(selective_scan_pkg, "selective_scan", _inputs(selective_scan_pkg, B, T, H, drop), chunk)


def test_triton_scans_take_bf16_inputs():
    """bf16 activations (as DeepSpeed's bf16 training passes them): fp32 state and outputs, gradients in
    bf16 (their rounding, 2^-9, sets the tolerance). No tl.dot here, so the interpreter handles bf16."""
    inputs = _inputs(linear_scan_pkg, 1, 21, 1, dtype=torch.bfloat16)
    _compare(linear_scan_pkg, "linear_scan", inputs, 8, tol=1e-2)
    inputs = _inputs(selective_scan_pkg, 1, 11, 1, drop=("h0_BEN",), dtype=torch.bfloat16)
    _compare(selective_scan_pkg, "selective_scan", inputs, 4, tol=1e-2)


def test_in_a_fresh_process():
    """When triton was imported before this module could switch the interpreter on, run this file's
    interpreter checks in a new process (where this module is the first to import triton)."""
    if not LATE:
        pytest.skip("the checks ran in this process")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not fresh_process"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TRITON_INTERPRET": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# -- compiled (CUDA only): realistic sizes and bf16 inputs ----------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (the interpreter mishandles bf16)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_scans_on_gpu(dtype):
    # grads come back in the input dtype: bf16 rounding (2^-9) bounds their error, not the kernel
    tol = REL_RMS_TOL if dtype == torch.float32 else 1e-2
    _compare(linear_scan_pkg, "linear_scan", _inputs(linear_scan_pkg, 2, 1000, 4, dtype=dtype), 64, tol)
    _compare(
        selective_scan_pkg, "selective_scan", _inputs(selective_scan_pkg, 2, 515, 5, dtype=dtype), 32, tol
    )


@pytest.mark.parametrize(
    "arch, op", [("hawk", "linear_scan"), ("mega", "linear_scan"), ("mamba", "selective_scan")]
)
def test_models_train_the_same_through_triton_and_torch(arch, op, monkeypatch):
    """``CEILING_KERNELS=triton`` routes the model's scan to the Triton kernel; logits and every parameter
    gradient match the PyTorch backend's (one small layer, an odd length; compiled on CUDA)."""
    import models
    from kernels import dispatch

    expected = _triton_op(op)
    torch.manual_seed(0)
    model = models.build(arch, size="10k", vocab_size=32, n_layers=1, scan_chunk_size=4).to(DEVICE)
    tokens = torch.randint(0, 32, (2, 13), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    results = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv(dispatch.ENV_VAR, backend)
        assert (dispatch.get(op, torch.device(DEVICE)) is expected) == (backend == "triton")
        model.zero_grad()
        logits = model(tokens)
        logits.float().logsumexp(-1).mean().backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        results[backend] = (logits.detach().clone(), grads)
    (ref_logits, ref_grads), (logits, grads) = results["torch"], results["triton"]
    assert rel_rms_error(logits, ref_logits) < 1e-4
    assert grads.keys() == ref_grads.keys()
    errors = {n: rel_rms_error(grads[n], ref_grads[n]) for n in ref_grads if ref_grads[n].abs().any()}
    assert max(errors.values()) < REL_RMS_TOL, errors
