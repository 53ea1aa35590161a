"""`ceiling plan SPEC --cluster FILE`: cluster files, the MFU model, device-hours and make-span."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cluster_cost import (
    CPU_ANCHORS,
    CPU_CURVE,
    DEFAULT_OTHER_FACTOR,
    GPU_ANCHORS,
    GPU_CURVE,
    ClusterError,
    MfuCurve,
    arch_factors,
    estimate_sweep,
    fit_mfu_curve,
    load_cluster,
    parse_cluster,
)
from orchestrator.spec import parse_spec
from tests.conftest import EXAMPLES, REPO

CLUSTER_FILES = sorted((REPO / "clusters").glob("*.yaml"))
H100 = {
    "name": "h100",
    "nodes": 1,
    "gpus_per_node": 8,
    "gpu": "H100",
    "peak_tflops": 1000,
    "cpus_per_node": 64,
}
CPU_BOX = {"name": "box", "nodes": 1, "gpus_per_node": 0, "peak_tflops": 0.1, "cpus_per_node": 4}


def _spec(**resources):
    return parse_spec(
        {
            "name": "cost",
            "architectures": ["transformer"],
            "sizes": ["20k"],
            "budgets": {"tokens": ["64k"]},
            "data": {"seq_len": 64},
            "training": {"batch_tokens": 64 * 2520},  # divisible by every worker count up to 10
            "resources": resources,
        }
    )


def _trial(i: int, params: float, flops: float, arch: str = "transformer"):
    """Just what the estimate reads from a PlannedTrial."""
    return SimpleNamespace(
        id=f"{i:016x}", label=arch, arch=arch, accounting={"total_params": params}, flops_exact=flops
    )


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_shipped_cluster_files_validate(path: Path):
    cluster = load_cluster(path)
    assert cluster.name == path.stem
    assert 0 < cluster.curve(1e9) <= cluster.curve.max


def test_curve_saturates_and_small_models_get_low_mfu():
    sizes = [1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e12]
    values = [GPU_CURVE(n) for n in sizes]
    assert values == sorted(values)  # monotone
    assert GPU_CURVE(1e6) < 0.05 and GPU_CURVE(1e12) == pytest.approx(GPU_CURVE.max, rel=0.01)
    assert 0.2 < GPU_CURVE(1.25e8) < 0.4


@pytest.mark.parametrize(
    "shipped, anchors", [(GPU_CURVE, GPU_ANCHORS), (CPU_CURVE, CPU_ANCHORS)], ids=["gpu", "cpu"]
)
def test_shipped_curves_are_the_fits_of_their_anchor_points(shipped: MfuCurve, anchors):
    refit = fit_mfu_curve(anchors)
    for params, measured, source in anchors:
        assert shipped(params) == pytest.approx(refit(params), rel=0.03), source
        assert 0.7 < shipped(params) / measured < 1.4, source  # the curve passes near every point


def test_device_hours_and_makespan_follow_the_formula():
    cluster = parse_cluster(H100 | {"startup_s": 36, "price_per_device_hour": 2.0})
    spec = _spec(workers_per_trial=2, gpus_per_worker=1, cpus_per_worker=4, max_concurrent_trials=3)
    trials = [_trial(i, 1e8, 1e18 * (i + 1)) for i in range(5)]
    estimate = estimate_sweep(trials, spec, cluster)
    mfu = GPU_CURVE(1e8)
    assert estimate.devices_per_trial == 2 and estimate.concurrent_trials == 3
    for trial, got in zip(trials, estimate.trials, strict=True):
        seconds = trial.flops_exact / (2 * 1e15 * mfu) + 36
        assert got.mfu == pytest.approx(mfu)
        assert got.wall_hours == pytest.approx(seconds / 3600)
        assert got.device_hours == pytest.approx(2 * seconds / 3600)
    assert estimate.total_device_hours == pytest.approx(sum(t.device_hours for t in estimate.trials))
    assert estimate.cost == pytest.approx(2.0 * estimate.total_device_hours)
    walls = sorted((t.wall_hours for t in estimate.trials), reverse=True)  # 5, 4, 3, 2, 1 units
    assert estimate.makespan_hours == pytest.approx(max(walls[0], walls[1] + walls[4], walls[2] + walls[3]))
    text = " ".join(estimate.assumptions)
    for phrase in ("MFU(N total params)", "peak 1000 TFLOP/s", "3 trial(s) at once", "+36 s per trial"):
        assert phrase in text
    json.dumps(estimate.to_json())  # JSON-safe for `ceiling plan --json`


def test_concurrency_is_capped_by_what_fits_on_the_cluster():
    cluster = parse_cluster(H100 | {"nodes": 2})
    spec = _spec(workers_per_trial=3, gpus_per_worker=1, max_concurrent_trials=100)
    assert estimate_sweep([_trial(0, 1e6, 1e15)], spec, cluster).concurrent_trials == 5  # 16 GPUs // 3
    cpu_bound = _spec(workers_per_trial=1, gpus_per_worker=1, cpus_per_worker=32, max_concurrent_trials=100)
    assert estimate_sweep([_trial(0, 1e6, 1e15)], cpu_bound, cluster).concurrent_trials == 4  # 64 CPUs // 32


def test_a_trial_that_cannot_fit_is_an_error_naming_resources():
    with pytest.raises(ClusterError, match=r"resources: one trial needs 9 worker\(s\)"):
        estimate_sweep(
            [_trial(0, 1e6, 1e15)], _spec(workers_per_trial=9, gpus_per_worker=1), parse_cluster(H100)
        )
    with pytest.raises(ClusterError, match="gpus_per_worker is 1 but cluster 'box' has no GPUs"):
        estimate_sweep([_trial(0, 1e6, 1e15)], _spec(gpus_per_worker=1), parse_cluster(CPU_BOX))


def test_a_cpu_sweep_on_a_gpu_cluster_assumes_one_gpu_per_worker_and_says_so():
    estimate = estimate_sweep([_trial(0, 1e6, 1e15)], _spec(gpus_per_worker=0), parse_cluster(H100))
    assert estimate.devices_per_trial == 1
    assert any("assumed 1 H100 per worker" in line for line in estimate.assumptions)


def test_cpu_cluster_counts_core_hours():
    spec = _spec(workers_per_trial=2, cpus_per_worker=2, max_concurrent_trials=4)
    estimate = estimate_sweep([_trial(0, 2e5, 1e12)], spec, parse_cluster(CPU_BOX))
    assert (
        estimate.device == "CPU core" and estimate.devices_per_trial == 4 and estimate.concurrent_trials == 1
    )
    assert estimate.trials[0].mfu == pytest.approx(CPU_CURVE(2e5))


def test_architecture_factors_come_from_bench_results(tmp_path: Path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "old.json").write_text(json.dumps({"mfu_factor": {"gla": 0.5}}))
    os.utime(results / "old.json", (1, 1))
    (results / "mixers.json").write_text("a table\n" + json.dumps({"ratio": 1.2, "mfu_factor": {"gla": 0.8}}))
    (results / "junk.json").write_text("{not json")
    (results / "other.json").write_text(json.dumps({"mfu_factor": {"retnet": "fast", "hyena": -1}}))
    factors, sources = arch_factors(results)
    assert factors == {"gla": 0.8} and sources == ["old.json", "mixers.json"]  # newest wins
    assert arch_factors(tmp_path / "absent") == ({}, [])

    cluster = parse_cluster(H100)
    trials = [_trial(0, 1e8, 1e18), _trial(1, 1e8, 1e18, "gla"), _trial(2, 1e8, 1e18, "hyena")]
    by_arch = {t.arch: t for t in estimate_sweep(trials, _spec(), cluster, factors, sources).trials}
    base = GPU_CURVE(1e8)
    assert by_arch["transformer"].mfu == pytest.approx(base)
    assert by_arch["gla"].mfu == pytest.approx(0.8 * base) and by_arch["gla"].mfu_source == "bench/results"
    assert by_arch["hyena"].mfu == pytest.approx(DEFAULT_OTHER_FACTOR * base)
    assert by_arch["gla"].wall_hours < by_arch["hyena"].wall_hours


def test_a_measured_mfu_in_the_cluster_file_is_used_as_is():
    cluster = parse_cluster(H100 | {"mfu": {"transformer": 0.5}})
    (got,) = estimate_sweep([_trial(0, 1e6, 1e15)], _spec(), cluster).trials
    assert got.mfu == 0.5 and got.mfu_source == "cluster file"


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"gpus": 8},
            "gpus: unknown field; remove it or check its spelling (fields: name, description, nodes",
        ),
        ({"gpu": None}, "gpu: name the accelerator"),
        ({"nodes": 0}, "nodes: Input should be greater than or equal to 1"),
        ({"peak_tflops": "fast"}, "peak_tflops: Input should be a valid number"),
        ({"mfu": {"mamab": 0.3}}, "mfu: unknown architecture 'mamab'; known:"),
        ({"mfu": {"transformer": 1.5}}, "MFU must be in (0, 1]"),
        ({"mfu_curve": {"max": 0.5, "half_size": "lots", "slope": 1}}, "mfu_curve.half_size"),
        ({"name": "../up"}, "name: '../up' is not a valid name"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_cluster_files_name_the_field(change: dict, expected: str):
    with pytest.raises(ClusterError) as info:
        parse_cluster(H100 | change)
    assert expected in " ".join(str(info.value).split())


def _plan(*args: str):
    return CliRunner().invoke(app, ["plan", str(EXAMPLES / "smoke.yaml"), *args])


def test_plan_with_cluster_prints_hours_makespan_and_assumptions():
    result = _plan("--cluster", str(REPO / "clusters" / "h100x8.yaml"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "on cluster h100x8" in text and "GPU-h" in text
    assert "make-span" in text and "assumptions: MFU(N total params)" in text


def test_plan_json_with_cluster_has_per_trial_and_total_figures():
    result = _plan("--cluster", str(REPO / "clusters" / "local-cpu.yaml"), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    cluster = document["cluster"]
    assert cluster["cluster"] == "local-cpu" and cluster["device"] == "CPU core"
    assert len(cluster["trials"]) == len(document["trials"]) == 4
    assert math.isclose(cluster["total_device_hours"], sum(t["device_hours"] for t in cluster["trials"]))
    assert 0 < cluster["makespan_hours"] <= sum(t["wall_hours"] for t in cluster["trials"])
    assert cluster["assumptions"]


def test_plan_with_a_bad_cluster_file_exits_2_naming_the_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes: 1\ngpus_per_node: 8\npeak_tflops: 100\ncpus_per_node: 8\nnotes: hi\n")
    result = _plan("--cluster", str(bad))
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "notes: unknown field" in message and "clusters/README.md" in message
    missing = _plan("--cluster", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "file not found" in missing.output and "h100x8.yaml" in missing.output
    (tmp_path / "tag.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    tagged = _plan("--cluster", str(tmp_path / "tag.yaml"))
    assert tagged.exit_code == 2 and "not valid YAML" in tagged.output


def test_yaml_alias_bombs_and_recursive_anchors_are_refused(tmp_path: Path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: *a8\n")
    with pytest.raises(ClusterError, match="expands to more than"):
        load_cluster(bomb)
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: &n [*n]\n")
    with pytest.raises(ClusterError, match="refers to itself"):
        load_cluster(loop)
    shared = tmp_path / "shared.yaml"  # ordinary anchors still work
    shared.write_text(
        "curve: &c {max: 0.5, half_size: 10M, slope: 1}\nname: x\nnodes: 1\ngpus_per_node: 0\n"
        "peak_tflops: 0.1\ncpus_per_node: 2\nmfu_curve: *c\n"
    )
    with pytest.raises(ClusterError, match="curve: unknown field"):
        load_cluster(shared)
