"""The Triton ``chunk_gla`` (kernels/gla/triton.py) against the fp32 reference: outputs, final states and
every input gradient by relative RMS, for per-head and per-channel decays (strong ones included), the
RWKV-6 bonus, odd lengths, with and without an initial state, value blocks split over programs.

Without CUDA the kernels run on CPU under the Triton interpreter (tiny shapes; the variable must be set
before the module is imported); with CUDA they run compiled, and the bf16 tests run too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Collection
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

from kernels.gla import gla_ref, make_channel_decay_inputs, make_head_decay_inputs, make_rwkv6_inputs  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
REL_RMS_TOL = 5e-3
MAKERS = {
    "head": (make_head_decay_inputs, {}),
    "channel": (make_channel_decay_inputs, {}),
    # -30 per token and more on every fifth channel: no split factor may overflow
    "channel_strong": (make_channel_decay_inputs, {"strength": 100.0}),
    # RWKV-6 with decays up to -20 per token
    "bonus": (make_rwkv6_inputs, {"w_max": 3.0}),
}


# on CUDA the real-shape tests below run instead: every tile configuration compiles for tens of seconds
interpreter_only = pytest.mark.skipif(
    CUDA, reason="tiny interpreter shapes: on CUDA the real-shape tests run"
)


def _triton_gla():
    if LATE:
        pytest.skip("triton was imported before TRITON_INTERPRET=1: checked by test_in_a_fresh_process")
    from kernels.gla import triton as gla_triton

    return gla_triton.chunk_gla


def _inputs(kind: str, B: int, T: int, H: int, K: int, V: int, initial: bool, seed: int = 0) -> dict:
    maker, extra = MAKERS[kind]
    made = maker(B, T, H, torch.Generator().manual_seed(seed), key_dim=K, value_dim=V, **extra)
    if not initial:
        made.pop("initial_state")
    return {n: x.detach().to(DEVICE).requires_grad_(True) for n, x in made.items()}


def _compare(inputs: dict, kwargs: dict, tol: float = REL_RMS_TOL) -> None:
    ref_out, ref_state, ref_grads = _run(None, gla_ref, inputs, {}, seed=1)
    out, state, grads = _run(None, _triton_gla(), inputs, kwargs, seed=1)
    assert out[0].dtype == inputs["v_BTHV"].dtype and state[0].dtype == torch.float32
    errors = {
        "output": rel_rms_error(out[0], ref_out[0]),
        "final state": rel_rms_error(state[0], ref_state[0]),
    }
    assert set(grads) == set(ref_grads)
    errors.update({f"grad {n}": rel_rms_error(grads[n].float(), ref_grads[n]) for n in ref_grads})
    bad = {n: f"{e:.2e}" for n, e in errors.items() if not e <= tol}
    assert not bad, f"relative RMS errors above {tol}: {bad}"


@interpreter_only
@pytest.mark.parametrize("initial", [True, False], ids=["s0", "no_s0"])
@pytest.mark.parametrize("kind", list(MAKERS))
def test_triton_gla_matches_reference(kind, initial):
    # T = 37: two full chunks of 16 and a partial one
    _compare(_inputs(kind, 2, 37, 2, 16, 16, initial), {"chunk_size": 16})


@interpreter_only
@pytest.mark.parametrize("kind", ["head", "bonus"])
def test_triton_gla_odd_short_and_split_values(kind):
    # T = 5 (one partial chunk), K = 8 and V = 24 padded inside 16-wide tiles, values over two programs
    _compare(_inputs(kind, 1, 5, 1, 8, 24, True, seed=3), {"chunk_size": 8, "value_block": 16})


@interpreter_only
@pytest.mark.parametrize("kind", ["head", "channel_strong", "bonus"])
def test_triton_gla_split_keys_and_values(kind):
    # K = 40 over three key blocks (the last one partly padding), V = 32 over two value blocks
    inputs = _inputs(kind, 1, 21, 2, 40, 32, True, seed=6)
    _compare(inputs, {"chunk_size": 16, "key_block": 16, "value_block": 16})


@interpreter_only
def test_triton_gla_per_head_decay_with_bonus():
    # the bonus with one decay per head (not a model's combination, but the op allows it)
    inputs = _inputs("bonus", 2, 37, 2, 16, 16, True, seed=2)
    inputs["g"] = inputs["g"].detach()[..., 0].clone().requires_grad_(True)
    _compare(inputs, {"chunk_size": 16})


@interpreter_only
def test_triton_gla_per_head_chunk_32_equals_per_channel_with_equal_channels():
    inputs = _inputs("head", 1, 40, 1, 8, 16, True, seed=5)
    chunk_gla = _triton_gla()
    o_head, s_head = chunk_gla(**inputs, chunk_size=32)
    g_channel = inputs["g"][..., None].expand(*inputs["g"].shape, 8)
    o_channel, s_channel = chunk_gla(**{**inputs, "g": g_channel}, sub_chunk_size=16)
    assert rel_rms_error(o_head, o_channel) < 1e-5 and rel_rms_error(s_head, s_channel) < 1e-5


@interpreter_only
def test_triton_gla_rounds_other_chunk_lengths_up_and_checks_value_blocks():
    # a model's chunk_size need not be a power of two: 24 runs as 32, with the same (exact) result
    _compare(_inputs("head", 1, 37, 1, 8, 16, True, seed=4), {"chunk_size": 24})
    with pytest.raises(ValueError, match="value_block"):
        _triton_gla()(**_inputs("head", 1, 5, 1, 8, 8, False), value_block=24)
    with pytest.raises(ValueError, match="key_block"):
        _triton_gla()(**_inputs("head", 1, 5, 1, 8, 8, False), key_block=8)


def _bf16(inputs: dict, names: Collection[str] = ("q_BTHK", "k_BTHK", "v_BTHV")) -> dict:
    """The ``names`` inputs (default q, k, v) in bf16, the rest as they are; the reference sees the same
    rounded values in fp32."""
    cast = {n: (x.detach().bfloat16() if n in names else x.detach()) for n, x in inputs.items()}
    return {n: x.requires_grad_(True) for n, x in cast.items()}


# (kind, dtype, K, V, initial state): every path once, few tile configurations (each compiles for tens of
# seconds); K = 128 splits keys over two programs, V = 128 values
GPU_CASES = [
    ("head", torch.float32, 64, 128, True),
    ("channel_strong", torch.float32, 128, 64, False),
    ("bonus", torch.float32, 64, 64, True),
    ("channel", torch.bfloat16, 64, 64, True),
    ("head", torch.bfloat16, 64, 64, False),
]


@pytest.mark.skipif(
    not CUDA, reason="real shapes and bf16 need a GPU (the interpreter mishandles bf16 tl.dot)"
)
@pytest.mark.parametrize("kind, dtype, K, V, initial", GPU_CASES, ids=lambda x: str(x).replace("torch.", ""))
def test_triton_gla_real_shapes_on_gpu(kind, dtype, K, V, initial):
    inputs = _inputs(kind, 2, 1000, 4, K, V, initial)
    if dtype == torch.bfloat16:
        # bf16 outputs and tf32 products bound the error
        _compare(_bf16(inputs), {"chunk_size": 64}, tol=2e-2)
    else:
        # exact fp32 products (input_precision="ieee") at 64-token chunks compile for minutes: 32 here
        _compare(inputs, {"chunk_size": 32})


FLA = CUDA and importlib.util.find_spec("fla") is not None


@pytest.mark.skipif(not FLA, reason="the fla adapter needs flash-linear-attention and a CUDA device")
@pytest.mark.parametrize("kind", list(MAKERS))
def test_fla_adapter_matches_reference(kind):
    from kernels.gla import fla as gla_fla

    inputs = _inputs(kind, 2, 300, 4, 64, 64, True)
    bf16 = _bf16(inputs)  # fla wants q, k, v in one 16-bit dtype
    ref_out, ref_state, ref_grads = _run(None, gla_ref, bf16, {}, seed=1)
    out, state, grads = _run(None, gla_fla.chunk_gla, bf16, {}, seed=1)
    assert rel_rms_error(out[0], ref_out[0]) < 2e-2 and rel_rms_error(state[0], ref_state[0]) < 2e-2
    bad = {n: rel_rms_error(grads[n].float(), g) for n, g in ref_grads.items()}
    assert all(e < 2e-2 for e in bad.values()), bad


@pytest.mark.skipif(not LATE, reason="the interpreter is on in this process: the tests above ran here")
def test_in_a_fresh_process():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _backends_agree(model: torch.nn.Module, vocab: int, monkeypatch, op: str, expected) -> None:
    """``CEILING_KERNELS=triton`` routes ``op`` to ``expected`` and the model's logits and parameter
    gradients match the PyTorch backend's."""
    dispatch = pytest.importorskip("kernels.dispatch", reason="kernels/dispatch.py is not there yet")
    model = model.to(DEVICE)
    tokens = torch.randint(0, vocab, (2, 37), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    results = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("CEILING_KERNELS", backend)
        if backend == "triton":
            assert dispatch.get(op, torch.device(DEVICE)) is expected
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


@interpreter_only
@pytest.mark.parametrize("arch", ["gla", "retnet"])
def test_dispatcher_routes_models_through_the_triton_kernel(arch, monkeypatch):
    expected = _triton_gla()
    torch.manual_seed(0)
    if arch == "gla":
        from models.gla import GLAConfig, build_gla

        config = GLAConfig(
            vocab_size=50,
            d_model=32,
            n_layers=1,
            seq_len=37,
            n_heads=2,
            key_dim=16,
            value_dim=32,
            ffn_hidden=64,
        )
        model = build_gla(config)
    else:
        from models.retnet import RetNetConfig, build_retnet

        model = build_retnet(
            RetNetConfig(vocab_size=50, d_model=32, n_layers=1, seq_len=37, n_heads=2, ffn_hidden=64)
        )
    _backends_agree(model, 50, monkeypatch, "chunk_gla", expected)


# Compiles every GLA and delta-rule kernel for an H100/H200 (sm_90) with small tiles: the interpreter runs
# the kernels' Python, not Triton's compiler, so type and lowering errors would otherwise show only on a GPU.
COMPILE_SCRIPT = """
import inspect
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from kernels.delta import triton as delta
from kernels.gla import triton as gla

def compile_for_sm90(kernel, **constexprs):
    names = list(inspect.signature(kernel.fn).parameters)
    signature = {}
    for name in names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*bf16" if name.split("_")[0] in ("q", "k", "v", "r", "a", "b") else "*fp32"
        else:
            signature[name] = "i32"
    constants = {(names.index(name),): value for name, value in constexprs.items()}
    source = ASTSource(fn=kernel, signature=signature, constexprs=constants)
    assert triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm["ptx"]

tiles = dict(BT=16, BK=16, BV=16, PRECISION="tf32")
for per_channel, exclusive in [(False, False), (True, True)]:
    for kernel in (gla._gla_fwd_kernel, gla._gla_bwd_kernel):
        compile_for_sm90(kernel, PER_CHANNEL=per_channel, EXCLUSIVE=exclusive, **tiles)
for kernel in (delta._gdr_fwd_kernel, delta._gdr_bwd_kernel, delta._gen_fwd_kernel, delta._gen_bwd_kernel):
    compile_for_sm90(kernel, **tiles)
print("compiled")
"""


@pytest.mark.slow
@pytest.mark.skipif(CUDA, reason="on CUDA the real-shape tests compile and run the kernels")
def test_kernels_compile_for_sm90_without_a_gpu():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences triton 3.9's default-change warning
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_SCRIPT],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-4000:]
