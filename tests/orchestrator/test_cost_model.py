"""The one time model (orchestrator.cost_model): `ceiling plan`'s estimate and `ceiling plan --cluster` both
come from it; tiny CPU trials pay a per-step overhead, large GPU trials their FLOPs; more FLOPs, more time."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import cost_model
from orchestrator.cluster_cost import estimate_sweep, load_cluster
from orchestrator.planning import estimated_seconds, makespan_seconds
from orchestrator.spec import parse_spec
from tests.conftest import REPO

CPU = cost_model.local_machine(gpu=False)
GPU = cost_model.local_machine(gpu=True)
NONE_MEASURED = cost_model.ArchFactors()


def _trial(params: float, flops: float, steps: int, arch: str = "transformer", *, run_fraction: float = 1.0):
    """What the model reads from a PlannedTrial (a branch runs ``run_fraction`` of its steps and FLOPs)."""
    return SimpleNamespace(
        id=f"{arch}-{params:g}-{flops:g}",
        label=arch,
        arch=arch,
        accounting={"total_params": params},
        flops_exact=flops,
        flops_to_run=flops * run_fraction,
        steps=steps,
    )


def _seconds(trial, machine=CPU, devices: float = 1) -> float:
    return cost_model.trial_time(cost_model.trial_work(trial), machine, devices, NONE_MEASURED).seconds


def test_a_tiny_cpu_trial_is_mostly_per_step_and_per_trial_overhead():
    # examples/cpu-study.yaml's smallest tuning run: a 16k Transformer, 62 steps of 2048 tokens, one core
    tiny = _trial(28_536, 3.12e8 * 62, 62)
    seconds = _seconds(tiny)
    overhead = cost_model.LOCAL_STARTUP_S + 62 * cost_model.CPU_STEP_OVERHEAD_S
    compute = tiny.flops_exact / (cost_model.CPU_PEAK_FLOPS * cost_model.CPU_CURVE(28_536))
    assert seconds == pytest.approx(overhead + compute)
    assert 3 < seconds < 10
    assert 0.02 < compute / 62 < 0.1  # a bare step of this model measured 47 ms on one core


def test_a_large_gpu_trial_is_its_flops_at_the_size_dependent_mfu():
    # a 1B model on 20B tokens (Chinchilla-optimal) on 8 H100s: ~11 h, the FLOPs dominate
    large = _trial(1e9, 6 * 1e9 * 20e9, 10_000)
    seconds = _seconds(large, GPU, devices=8)
    mfu = cost_model.GPU_CURVE(1e9)
    assert 0.35 < mfu < 0.42
    assert seconds == pytest.approx(large.flops_exact / (8 * cost_model.GPU_PEAK_FLOPS * mfu) + 3.0)
    assert 5 * 3600 < seconds < 30 * 3600


@pytest.mark.parametrize("machine", [CPU, GPU], ids=["cpu", "gpu"])
def test_time_grows_with_flops_and_with_steps(machine):
    flops = [1e9 * 4**k for k in range(12)]
    times = [_seconds(_trial(1e6, f, 100), machine) for f in flops]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    more_steps = [_seconds(_trial(1e6, 1e12, steps), machine) for steps in (10, 100, 1000)]
    assert more_steps == sorted(more_steps)  # equal on a GPU (no per-step term), growing on CPU


def test_a_branch_counts_only_its_cooldown():
    whole, branch = _trial(1e5, 1e12, 400), _trial(1e5, 1e12, 400, run_fraction=0.25)
    startup = cost_model.LOCAL_STARTUP_S
    assert _seconds(branch) - startup == pytest.approx((_seconds(whole) - startup) / 4)


def test_architecture_factors_scale_the_whole_step_and_default_by_device():
    measured = cost_model.ArchFactors({"gla": 0.5}, ("mixers.json",))
    gla = cost_model.trial_time(cost_model.trial_work(_trial(1e6, 1e13, 100, "gla")), CPU, 1, measured)
    base = cost_model.trial_time(cost_model.trial_work(_trial(1e6, 1e13, 100)), CPU, 1, measured)
    assert gla.seconds - CPU.startup_s == pytest.approx(2 * (base.seconds - CPU.startup_s))
    assert (gla.mfu_source, base.mfu_source) == ("bench/results", "baseline")
    # nothing measured: other mixers are as fast as attention on CPU (PyTorch ops all), 0.6x on GPU
    assert NONE_MEASURED.factor("hawk", gpu=False) == (1.0, "default (not measured)")
    assert NONE_MEASURED.factor("hawk", gpu=True)[0] == cost_model.DEFAULT_OTHER_FACTOR


def test_factors_come_from_a_path_or_the_environment_never_the_repository(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CEILING_BENCH_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)  # no bench/results here, and none is looked for
    assert cost_model.arch_factors() == ({}, [])
    table = tmp_path / "gpu.json"
    table.write_text("a table\n" + json.dumps({"mfu_factor": {"gla": 0.8}}))
    assert cost_model.arch_factors(table) == ({"gla": 0.8}, ["gpu.json"])
    monkeypatch.setenv("CEILING_BENCH_RESULTS", str(tmp_path))
    assert cost_model.arch_factors() == ({"gla": 0.8}, ["gpu.json"])


def test_plan_and_plan_on_the_local_cpu_cluster_file_agree():
    """One model: `ceiling plan` on this machine is `ceiling plan --cluster clusters/local-cpu.yaml`."""
    spec = parse_spec(
        {
            "name": "agree",
            "architectures": ["transformer"],
            "sizes": ["20k"],
            "budgets": {"tokens": ["64k"]},
            "resources": {"cpus_per_worker": 1, "max_concurrent_trials": 2},
        }
    )
    trials = [
        _trial(3e4 * (k + 1), 1e11 * (k + 1), 50 * (k + 1), arch)
        for k in range(5)
        for arch in ("transformer", "hawk")
    ]
    estimate = estimate_sweep(trials, spec, load_cluster(REPO / "clusters" / "local-cpu.yaml"))
    for trial, got in zip(trials, estimate.trials, strict=True):
        assert got.wall_hours * 3600 == pytest.approx(estimated_seconds(trial, spec))
    assert estimate.makespan_hours * 3600 == pytest.approx(makespan_seconds(trials, spec))
