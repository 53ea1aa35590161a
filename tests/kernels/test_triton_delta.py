"""The Triton delta-rule kernels (kernels/delta/triton.py) against the fp32 references: outputs, final
states and every input gradient by relative RMS, odd lengths, with and without an initial state, value
blocks split over programs.

Without CUDA the kernels run on CPU under the Triton interpreter (tiny shapes; the variable must be set
before triton is imported); with CUDA they run compiled, and the bf16 tests run too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CUDA = torch.cuda.is_available()
# the interpreter must be on before triton is imported (parts of it read the variable then); if another
# test module imported triton first, these tests run in a fresh process instead (test_in_a_fresh_process)
LATE = not CUDA and "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"
if not CUDA and not LATE:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="triton is not installed (the optional kernels extra)")

sys.path.insert(0, str(Path(__file__).parent))
from test_kernels_against_reference import _run, rel_rms_error  # noqa: E402
from test_triton_gla import _backends_agree, _bf16  # noqa: E402

from kernels.delta import (  # noqa: E402
    gated_delta_rule_ref,
    generalized_delta_rule_ref,
    make_gated_delta_inputs,
    make_rwkv7_inputs,
)

DEVICE = "cuda" if CUDA else "cpu"
SIXTEEN_BIT = {"q_BTHK", "k_BTHK", "v_BTHV", "r_BTHK", "a_BTHK", "b_BTHK"}  # decays and beta stay fp32
REL_RMS_TOL = 5e-3


# on CUDA the real-shape tests below run instead: every tile configuration compiles for tens of seconds
interpreter_only = pytest.mark.skipif(
    CUDA, reason="tiny interpreter shapes: on CUDA the real-shape tests run"
)


def _triton_delta():
    if LATE:
        pytest.skip("triton was imported before TRITON_INTERPRET=1: checked by test_in_a_fresh_process")
    from kernels.delta import triton as delta_triton

    return delta_triton


def _gated_inputs(B: int, T: int, H: int, K: int, V: int, initial: bool, seed: int = 0) -> dict:
    made = make_gated_delta_inputs(B, T, H, torch.Generator().manual_seed(seed), key_dim=K, value_dim=V)
    if not initial:
        made.pop("initial_state")
    return {n: x.detach().to(DEVICE).requires_grad_(True) for n, x in made.items()}


def _compare(reference, fast, inputs: dict, kwargs: dict, tol: float = REL_RMS_TOL) -> None:
    ref_out, ref_state, ref_grads = _run(None, reference, inputs, {}, seed=1)
    out, state, grads = _run(None, fast, inputs, kwargs, seed=1)
    assert out[0].dtype == inputs["v_BTHV"].dtype and state[0].dtype == torch.float32
    errors = {
        "output": rel_rms_error(out[0], ref_out[0]),
        "final state": rel_rms_error(state[0], ref_state[0]),
    }
    assert set(grads) == set(ref_grads)
    errors.update({f"grad {n}": rel_rms_error(grads[n].float(), ref_grads[n]) for n in ref_grads})
    bad = {n: f"{e:.2e}" for n, e in errors.items() if not e <= tol}
    assert not bad, f"relative RMS errors above {tol}: {bad}"


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 37, 2, 16, 16), {"chunk_size": 16}),  # two full chunks and a partial one
        (
            (1, 5, 1, 8, 24),
            {"chunk_size": 8, "value_block": 16},
        ),  # one partial chunk, padded K, 2 value blocks
        ((1, 40, 1, 16, 16), {"chunk_size": 32}),
    ],
    ids=["T37", "T5_split_values", "T40_C32"],
)
@interpreter_only
@pytest.mark.parametrize("initial", [True, False], ids=["s0", "no_s0"])
def test_triton_gated_delta_rule_matches_reference(shape, kwargs, initial):
    inputs = _gated_inputs(*shape, initial)
    _compare(gated_delta_rule_ref, _triton_delta().chunk_gated_delta_rule, inputs, kwargs)


@interpreter_only
def test_triton_gated_delta_rule_rounds_other_chunk_lengths_up_and_checks_value_blocks():
    # a model's chunk_size need not be a power of two: 24 runs as 32, with the same (exact) result
    delta = _triton_delta()
    _compare(
        gated_delta_rule_ref,
        delta.chunk_gated_delta_rule,
        _gated_inputs(1, 37, 1, 8, 16, True),
        {"chunk_size": 24},
    )
    with pytest.raises(ValueError, match="value_block"):
        delta.chunk_gated_delta_rule(**_gated_inputs(1, 5, 1, 8, 8, False), value_block=24)


def _rwkv7_inputs(
    B: int, T: int, H: int, N: int, initial: bool, *, V: int | None = None, w_scale: float = 1.0
):
    generator = torch.Generator().manual_seed(T)
    made = {n: x.detach() for n, x in make_rwkv7_inputs(B, T, H, generator, head_dim=N).items()}
    made["w_BTHK"] = made["w_BTHK"] * w_scale
    if V is not None:  # value width different from the key width
        made["v_BTHV"] = torch.randn(B, T, H, V, generator=generator)
        made["initial_state"] = 0.5 * torch.randn(B, H, N, V, generator=generator)
    if not initial:
        made.pop("initial_state")
    return {n: x.to(DEVICE).requires_grad_(True) for n, x in made.items()}


@pytest.mark.parametrize(
    "shape, extra, kwargs",
    [
        ((2, 37, 2, 16), {}, {"chunk_size": 16}),
        ((1, 5, 1, 8), {"V": 24}, {"chunk_size": 8, "value_block": 16}),  # padded K, 2 value blocks
        # log decays down to -20 per token: beyond chunk.py's split-factor range, exact here
        ((1, 40, 1, 16), {"w_scale": 33.0}, {"chunk_size": 32}),
    ],
    ids=["T37", "T5_split_values", "T40_C32_as_16_strong_decay"],
)
@interpreter_only
@pytest.mark.parametrize("initial", [True, False], ids=["s0", "no_s0"])
def test_triton_generalized_delta_rule_matches_reference(shape, extra, kwargs, initial):
    inputs = _rwkv7_inputs(*shape, initial, **extra)
    _compare(generalized_delta_rule_ref, _triton_delta().chunk_generalized_delta_rule, inputs, kwargs)


# (op, dtype, K, V, initial state): few tile configurations, since each compiles for tens of seconds
GPU_CASES = [
    ("chunk_gated_delta_rule", torch.float32, 128, 128, True),
    ("chunk_gated_delta_rule", torch.bfloat16, 64, 64, False),
    ("chunk_generalized_delta_rule", torch.float32, 64, 64, True),
    ("chunk_generalized_delta_rule", torch.bfloat16, 64, 64, False),
]


@pytest.mark.skipif(
    not CUDA, reason="real shapes and bf16 need a GPU (the interpreter mishandles bf16 tl.dot)"
)
@pytest.mark.parametrize("op, dtype, K, V, initial", GPU_CASES, ids=lambda x: str(x).replace("torch.", ""))
def test_triton_delta_rules_real_shapes_on_gpu(op, dtype, K, V, initial):
    if op == "chunk_gated_delta_rule":
        inputs, reference = _gated_inputs(2, 1000, 4, K, V, initial), gated_delta_rule_ref
    else:
        inputs, reference = _rwkv7_inputs(2, 1000, 4, K, initial, V=V), generalized_delta_rule_ref
    # exact fp32 products (input_precision="ieee") at 64-token chunks compile for minutes: 32 there
    chunk = 16 if op == "chunk_generalized_delta_rule" else 64 if dtype == torch.bfloat16 else 32
    kwargs = {"chunk_size": chunk}
    if dtype == torch.bfloat16:
        # the reference sees the same rounded values in fp32; bf16 outputs and tf32 products bound the error
        _compare(reference, getattr(_triton_delta(), op), _bf16(inputs, SIXTEEN_BIT), kwargs, tol=2e-2)
    else:
        _compare(reference, getattr(_triton_delta(), op), inputs, kwargs)


FLA = CUDA and importlib.util.find_spec("fla") is not None


@pytest.mark.skipif(not FLA, reason="the fla adapters need flash-linear-attention and a CUDA device")
@pytest.mark.parametrize("op", ["chunk_gated_delta_rule", "chunk_generalized_delta_rule"])
def test_fla_adapter_matches_reference(op):
    from kernels.delta import fla as delta_fla

    if op == "chunk_gated_delta_rule":
        inputs, reference = _gated_inputs(2, 300, 4, 64, 64, True), gated_delta_rule_ref
    else:
        inputs, reference = _rwkv7_inputs(2, 300, 4, 64, True), generalized_delta_rule_ref
    # fla wants 16-bit inputs; the reference sees the same rounded values in fp32
    cast = _bf16(inputs, SIXTEEN_BIT)
    ref_out, ref_state, ref_grads = _run(None, reference, cast, {}, seed=1)
    out, state, grads = _run(None, getattr(delta_fla, op), cast, {}, seed=1)
    assert rel_rms_error(out[0], ref_out[0]) < 2e-2 and rel_rms_error(state[0], ref_state[0]) < 2e-2
    errors = {n: rel_rms_error(grads[n].float(), g) for n, g in ref_grads.items()}
    assert all(e < 2e-2 for e in errors.values()), errors


@pytest.mark.skipif(not LATE, reason="the interpreter is on in this process: the tests above ran here")
def test_in_a_fresh_process():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@interpreter_only
@pytest.mark.parametrize("arch", ["gated_deltanet", "rwkv7"])
def test_dispatcher_routes_models_through_the_triton_kernels(arch, monkeypatch):
    delta = _triton_delta()
    torch.manual_seed(0)
    common = {"vocab_size": 50, "d_model": 32, "n_layers": 1, "seq_len": 37}
    if arch == "gated_deltanet":
        from models.gated_deltanet import GatedDeltaNetConfig, build_gated_deltanet

        config = GatedDeltaNetConfig(**common, n_heads=2, head_dim=8, head_v_dim=16, ffn_hidden=64)
        model, op, expected = (
            build_gated_deltanet(config),
            "chunk_gated_delta_rule",
            delta.chunk_gated_delta_rule,
        )
    else:
        from models.rwkv7 import RWKV7Config, build_rwkv7

        config = RWKV7Config(
            **common, head_dim=16, ffn_hidden=64, decay_lora=8, iclr_lora=8, value_lora=8, gate_lora=8
        )
        model, op, expected = (
            build_rwkv7(config),
            "chunk_generalized_delta_rule",
            delta.chunk_generalized_delta_rule,
        )
    _backends_agree(model, 50, monkeypatch, op, expected)
