"""kernels.dispatch: the default backend per device, the CEILING_KERNELS override, and errors that say why
a forced backend cannot run. Runs without a GPU: CUDA-only situations are exercised through the rules
(a "cuda" device string never touches a GPU here) and through the absence of optional packages."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels import dispatch

CUDA = torch.cuda.is_available()
TRITON_INSTALLED = importlib.util.find_spec("triton") is not None
# same convention as the Triton kernel tests (test_triton_*.py): without CUDA, triton is first imported
# with its interpreter on, so a kernel module imported here works for them too
if not CUDA and "triton" not in sys.modules:
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)


def _triton_imports() -> bool:
    return dispatch._triton_import_error() is None


def test_cpu_defaults_to_torch_and_returns_the_public_functions():
    import kernels.delta
    import kernels.gla
    import kernels.linear_scan
    import kernels.selective_scan

    assert dispatch.backend_for(torch.device("cpu")) == "torch"
    assert dispatch.backend_for("cpu") == "torch"
    assert dispatch.get("chunk_gla", torch.device("cpu")) is kernels.gla.chunk_gla
    assert dispatch.get("chunk_gated_delta_rule", "cpu") is kernels.delta.chunk_gated_delta_rule
    assert dispatch.get("chunk_generalized_delta_rule", "cpu") is kernels.delta.chunk_generalized_delta_rule
    assert dispatch.get("linear_scan", "cpu") is kernels.linear_scan.linear_scan
    assert dispatch.get("selective_scan", torch.zeros(1)) is kernels.selective_scan.selective_scan


def test_cuda_defaults_to_triton_when_it_imports():
    expected = "triton" if _triton_imports() else "torch"
    assert dispatch.backend_for(torch.device("cuda", 0)) == expected
    assert dispatch.backend_for("cuda:1") == expected


def test_env_overrides_the_default(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")
    assert dispatch.backend_for("cuda") == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, " Triton ")  # case and spaces forgiven
    assert dispatch.backend_for("cpu") == "triton"


def test_unknown_backend_and_unknown_op_are_named(monkeypatch):
    with pytest.raises(KeyError, match="unknown op 'chunk_glaa'.*chunk_gla"):
        dispatch.get("chunk_glaa", "cpu")
    monkeypatch.setenv(dispatch.ENV_VAR, "cuda")
    with pytest.raises(dispatch.BackendUnavailable, match="CEILING_KERNELS='cuda' is not a backend.*torch"):
        dispatch.get("linear_scan", "cpu")


def test_forced_triton_on_cpu_without_interpreter_says_why(monkeypatch):
    _triton_imports()  # imported (or not) before the interpreter is switched off for this test
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    reason = "needs the triton package" if not _triton_imports() else "need a CUDA device.*TRITON_INTERPRET=1"
    with pytest.raises(dispatch.BackendUnavailable, match=reason):
        dispatch.get("linear_scan", "cpu")


@pytest.mark.skipif(not TRITON_INSTALLED, reason="triton is not installed (the optional kernels extra)")
@pytest.mark.skipif(CUDA, reason="checks the CPU interpreter path; with CUDA the kernels run compiled")
def test_forced_triton_on_cpu_with_interpreter_returns_the_triton_function(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    function = dispatch.get("linear_scan", "cpu")
    assert function.__module__ == "kernels.linear_scan.triton" and function.__name__ == "linear_scan"


def test_forced_fla_says_why(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "fla")
    if dispatch._fla_import_error() is not None:
        with pytest.raises(dispatch.BackendUnavailable, match="needs flash-linear-attention"):
            dispatch.get("chunk_gla", "cuda")
    # fla covers no diagonal scan; with fla installed that is the reason given
    monkeypatch.setattr(dispatch, "_fla_import_error", lambda: None)
    with pytest.raises(dispatch.BackendUnavailable, match="'linear_scan' is not covered by backend 'fla'"):
        dispatch.get("linear_scan", "cuda")
    # and an op it covers comes from the adapter module (which imports fla only when called)
    import kernels.gla.fla

    assert dispatch.get("chunk_gla", "cuda") is kernels.gla.fla.chunk_gla


def test_importing_models_and_kernels_does_not_import_triton():
    code = (
        "import sys, models, kernels.dispatch, kernels.gla, kernels.delta, kernels.linear_scan, "
        "kernels.selective_scan; models.build('hawk', size='10k', vocab_size=32); "
        "print('triton' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_models_route_their_mixers_through_the_dispatcher(monkeypatch):
    """A model built on CPU calls whatever the dispatcher hands out (here a recording wrapper)."""
    import models

    calls = []
    real_get = dispatch.get

    def recording_get(op_name, device):
        calls.append((op_name, torch.device(device).type))
        return real_get(op_name, device)

    monkeypatch.setattr(dispatch, "get", recording_get)
    for name, op in [("hawk", "linear_scan"), ("mamba", "selective_scan"), ("gla", "chunk_gla")]:
        model = models.build(name, size="10k", vocab_size=32)
        model(torch.randint(0, 32, (1, 5)))
        assert (op, "cpu") in calls, f"{name} did not ask the dispatcher for {op}"


BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "kernels.py")


@pytest.mark.skipif(CUDA, reason="checks the no-GPU behaviour")
def test_kernel_benchmark_without_a_gpu_says_so_and_exits_0():
    out = subprocess.run([sys.executable, BENCH], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no GPU" in out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"gpu": None, "skipped": "no GPU"}


@pytest.mark.skipif(not TRITON_INSTALLED, reason="triton is not installed (the optional kernels extra)")
def test_kernel_benchmark_cpu_smoke_runs_the_scans_under_the_interpreter(tmp_path):
    command = [sys.executable, BENCH, "--cpu-smoke", "--ops", "linear_scan", "selective_scan"]
    out = subprocess.run(
        [*command, "--backends", "triton", "torch", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={k: v for k, v in os.environ.items() if k != "CEILING_KERNELS"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(summary)[0] == "scan_hbm_fraction_min"  # ratios first
    assert summary["rows"] == 4 and summary["errors"] == 0
    saved = json.loads((tmp_path / "kernels-cpu-interpreter.json").read_text())
    assert {(r["op"], r["backend"]) for r in saved["rows"]} == {
        (op, backend) for op in ("linear_scan", "selective_scan") for backend in ("triton", "torch")
    }
    assert (tmp_path / "kernels-cpu-interpreter.md").read_text().startswith("# Kernel benchmark")


GPU_CHECK = str(Path(__file__).resolve().parents[2] / "bench" / "gpu_check.sh")


def test_gpu_check_script_parses_and_handles_its_arguments(tmp_path):
    def run(*args, **env):
        return subprocess.run(
            ["bash", GPU_CHECK, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
        )

    assert subprocess.run(["bash", "-n", GPU_CHECK], capture_output=True, timeout=30).returncode == 0
    usage = run("--help")
    assert usage.returncode == 0 and "--dry-run" in usage.stdout
    plan = run("--dry-run", "--quick", "--skip", "sweep", "--skip", "install", "--out", str(tmp_path / "o"))
    assert plan.returncode == 0, plan.stderr
    assert (
        "sweep: skipped" in plan.stdout and "install: skipped" in plan.stdout and "  bench\n" in plan.stdout
    )
    assert not (tmp_path / "o").exists()  # a dry run writes nothing
    for bad, message in [
        (["--bogus"], "unknown argument"),
        (["--skip", "nap"], "unknown step"),
        (["--out"], "needs"),
    ]:
        result = run(*bad)
        assert result.returncode == 2 and message in result.stderr, (bad, result.stderr)
    if not CUDA:  # no GPU: says so, writes a summary, exit code 3
        result = run(OUT=str(tmp_path / "none"))
        assert result.returncode == 3 and "no CUDA GPU" in result.stderr
        assert json.loads((tmp_path / "none" / "summary.json").read_text())["gpu"] is None
