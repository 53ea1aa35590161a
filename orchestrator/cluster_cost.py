"""What a sweep would cost on a described cluster: device-hours per trial, total, and make-span.

``ceiling plan SPEC --cluster clusters/h100x8.yaml`` answers "how many GPU-hours, and how long, if I
submit this there?" before anything runs. This module reads the cluster file; the time of a trial comes
from ``orchestrator.cost_model`` (the model ``ceiling plan``'s own estimate uses), with the cluster's
peak, MFU curve, per-step overhead and start-up in place of this machine's:

    wall seconds of a trial  = startup_s + steps x step_overhead_s / factor(arch)
                               + training FLOPs run (exact: 6ND + attention) / (devices x peak x MFU)
    device-hours of a trial  = wall seconds x devices / 3600
    MFU(arch, N)             = curve(N) x factor(arch)        (or the cluster file's mfu[arch] if given)

The make-span packs trials longest-first onto the sweep's concurrent slots: ``max_concurrent_trials``,
capped by how many trials' workers fit on the cluster at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.cost_model import (
    CPU_ANCHORS,
    CPU_CURVE,
    CPU_STEP_OVERHEAD_S,
    DEFAULT_OTHER_FACTOR,
    GPU_ANCHORS,
    GPU_CURVE,
    ArchFactors,
    Machine,
    MfuCurve,
    arch_factors,
    fit_mfu_curve,
    makespan,
    trial_time,
    trial_work,
)
from orchestrator.spec import NAME_PATTERN, SpecError, SweepSpec, error_hint, format_loc

# Re-exported: the MFU model's constants and helpers live in orchestrator.cost_model.
__all__ = [
    "CPU_ANCHORS",
    "CPU_CURVE",
    "DEFAULT_OTHER_FACTOR",
    "GPU_ANCHORS",
    "GPU_CURVE",
    "ClusterError",
    "ClusterSpec",
    "MfuCurve",
    "SweepEstimate",
    "TrialEstimate",
    "arch_factors",
    "estimate_sweep",
    "fit_mfu_curve",
    "format_hours",
    "load_cluster",
    "parse_cluster",
    "print_estimate",
    "safe_load_bounded",
]

# Where the shipped examples are, for a "file not found" hint; absent in an installed package.
SHIPPED_CLUSTERS = Path(__file__).resolve().parents[1] / "clusters"


class ClusterError(SpecError):
    """A cluster file that cannot be used, or a sweep that cannot run on the described cluster."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSpec(_Strict):
    """A cluster described for cost estimates (clusters/*.yaml)."""

    name: str
    description: str = ""
    nodes: int = Field(ge=1, le=100_000)
    gpus_per_node: int = Field(ge=0, le=64, description="0 for a CPU-only cluster")
    gpu: str | None = Field(default=None, description="accelerator name, e.g. H100-SXM5-80GB")
    peak_tflops: float = Field(
        gt=0, le=100_000, description="dense bf16 TFLOP/s per GPU; per CPU core when gpus_per_node is 0"
    )
    cpus_per_node: int = Field(ge=1, le=100_000)
    mfu_curve: MfuCurve | None = Field(default=None, description="default: fitted GPU or CPU curve")
    mfu: dict[str, float] = Field(
        default_factory=dict,
        description="per architecture: a fixed MFU on this cluster, overriding the model",
    )
    startup_s: float = Field(
        default=30.0,
        ge=0,
        le=86_400,
        description="per trial: worker start, engine set-up, evals, checkpoints",
    )
    step_overhead_s: float | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="per optimizer step beyond the curve's bare step; default 0 on GPUs, "
        f"{CPU_STEP_OVERHEAD_S:g} s on CPU cores",
    )
    price_per_device_hour: float | None = Field(default=None, ge=0, description="optional, in any currency")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"{name!r} is not a valid name; use 1-64 letters, digits, '_', '-' or '.'")
        return name

    @field_validator("mfu")
    @classmethod
    def _mfu_values(cls, table: dict[str, float]) -> dict[str, float]:
        import models  # lazy: the registry imports torch

        known = models.available()
        for arch, value in table.items():
            if arch not in known:
                raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(known)}")
            if not 0 < value <= 1:
                raise ValueError(f"{arch}: MFU must be in (0, 1], got {value}")
        return table

    @model_validator(mode="after")
    def _gpu_named(self) -> ClusterSpec:
        if self.gpus_per_node and not self.gpu:
            raise ValueError("gpu: name the accelerator (e.g. gpu: H100-SXM5-80GB) when gpus_per_node > 0")
        if not self.gpus_per_node and self.gpu:
            raise ValueError(f"gpu is {self.gpu!r} but gpus_per_node is 0; set gpus_per_node or drop gpu")
        return self

    @property
    def device(self) -> str:
        return f"GPU ({self.gpu})" if self.gpus_per_node else "CPU core"

    @property
    def curve(self) -> MfuCurve:
        return self.mfu_curve or (GPU_CURVE if self.gpus_per_node else CPU_CURVE)

    def machine(self) -> Machine:
        """The time model's constants for one of this cluster's devices."""
        overhead = self.step_overhead_s
        if overhead is None:
            overhead = 0.0 if self.gpus_per_node else CPU_STEP_OVERHEAD_S
        return Machine(
            gpu=bool(self.gpus_per_node),
            peak_flops=self.peak_tflops * 1e12,
            curve=self.curve,
            startup_s=self.startup_s,
            step_overhead_s=overhead,
            fixed_mfu=self.mfu,
        )


def parse_cluster(data: Any, source: str = "cluster file") -> ClusterSpec:
    if not isinstance(data, dict):
        raise ClusterError(
            [
                f"(top level): expected a mapping (name:, nodes:, gpus_per_node:, ...), got {type(data).__name__}"
            ],
            source,
        )
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{format_loc(tuple(e['loc']))}: {_cluster_hint(e)}" if e["loc"] else _cluster_hint(e)
            for e in exc.errors()
        ]
        raise ClusterError(problems, source) from None


def _cluster_hint(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        fields = (
            ", ".join(ClusterSpec.model_fields)
            if len(error["loc"]) == 1
            else ", ".join(MfuCurve.model_fields)
        )
        return f"unknown field; remove it or check its spelling (fields: {fields}; see clusters/README.md)"
    return error_hint(error)


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster YAML file (safe-loaded)."""
    path = Path(path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in SHIPPED_CLUSTERS.glob("*.yaml"))) or "none found"
        raise ClusterError([f"file not found: {path}; shipped examples in clusters/: {shipped}"], str(path))
    try:
        data = safe_load_bounded(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise ClusterError([f"not valid YAML: {exc}"], str(path)) from None
    return parse_cluster(data, str(path))


MAX_YAML_NODES = 100_000


def safe_load_bounded(text: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load``, refusing documents whose aliases expand past ``max_nodes`` values or loop.

    Anchors and aliases let ~400 bytes of YAML stand for a million values (the "billion laughs"), which
    every later step (validation, error messages, JSON) would expand. Counting the expanded size over the
    loaded graph (memoised by identity, so linear in the file) catches that before anything expands it.
    """
    data = yaml.safe_load(text)
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ValueError("the YAML refers to itself (a recursive anchor); write the values out")
        in_progress.add(key)
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        total = 1
        for child in children:
            total += size(child)
            if total > max_nodes:
                raise ValueError(
                    f"the YAML expands to more than {max_nodes} values (anchors/aliases); simplify it"
                )
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(data)
    return data


@dataclass(frozen=True)
class TrialEstimate:
    id: str
    label: str
    arch: str
    params_total: int
    flops: float
    mfu: float
    mfu_source: str
    devices: float
    wall_hours: float
    device_hours: float


@dataclass(frozen=True)
class SweepEstimate:
    cluster: str
    device: str
    devices_per_trial: float
    concurrent_trials: int
    trials: list[TrialEstimate]
    total_device_hours: float
    makespan_hours: float
    cost: float | None
    assumptions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _worker_devices(spec: SweepSpec, cluster: ClusterSpec, notes: list[str]) -> float:
    res = spec.resources
    if cluster.gpus_per_node:
        if res.gpus_per_worker:
            return res.gpus_per_worker
        notes.append(f"resources.gpus_per_worker is 0 in the sweep: assumed 1 {cluster.gpu} per worker")
        return 1.0
    if res.gpus_per_worker:
        raise ClusterError(
            [
                f"resources.gpus_per_worker is {res.gpus_per_worker:g} but cluster {cluster.name!r} has no GPUs "
                "(gpus_per_node: 0); estimate on a GPU cluster file or set gpus_per_worker: 0"
            ],
            cluster.name,
        )
    return res.cpus_per_worker


def _concurrency(spec: SweepSpec, cluster: ClusterSpec, gpus_per_worker: float) -> int:
    res = spec.resources
    per_node = math.floor(cluster.cpus_per_node / res.cpus_per_worker + 1e-9)
    if cluster.gpus_per_node:
        per_node = min(per_node, math.floor(cluster.gpus_per_node / gpus_per_worker + 1e-9))
    worker_slots = per_node * cluster.nodes
    fits = worker_slots // res.workers_per_trial
    if fits < 1:
        need = (
            f"{gpus_per_worker:g} GPU(s) and {res.cpus_per_worker:g} CPU(s)"
            if cluster.gpus_per_node
            else f"{res.cpus_per_worker:g} CPU(s)"
        )
        raise ClusterError(
            [
                f"resources: one trial needs {res.workers_per_trial} worker(s) of {need}, but cluster "
                f"{cluster.name!r} ({cluster.nodes} node(s) x {cluster.gpus_per_node} GPUs / {cluster.cpus_per_node} "
                f"CPUs) fits {worker_slots} such worker(s); lower resources.workers_per_trial / cpus_per_worker / "
                "gpus_per_worker or describe a bigger cluster"
            ],
            cluster.name,
        )
    return min(res.max_concurrent_trials, fits)


def estimate_sweep(
    trials: list,
    spec: SweepSpec,
    cluster: ClusterSpec,
    factors: dict[str, float] | None = None,
    factor_sources: list[str] | None = None,
) -> SweepEstimate:
    """Device-hours and make-span of ``trials`` (planned from ``spec``) on ``cluster``."""
    notes: list[str] = []
    per_worker = _worker_devices(spec, cluster, notes)
    devices = per_worker * spec.resources.workers_per_trial
    concurrent = _concurrency(spec, cluster, per_worker if cluster.gpus_per_node else 0.0)
    machine = cluster.machine()
    known = ArchFactors(dict(factors or {}), tuple(factor_sources or ()))
    estimates: list[TrialEstimate] = []
    used_factors: dict[str, str] = {}
    for trial in trials:
        work = trial_work(trial)
        timing = trial_time(work, machine, devices, known)
        if timing.factor is not None:
            used_factors[work.arch] = f"{work.arch} x{timing.factor:g} [{timing.factor_source}]"
        estimates.append(
            TrialEstimate(
                id=trial.id,
                label=trial.label,
                arch=work.arch,
                params_total=work.params_total,
                flops=work.flops,
                mfu=timing.mfu,
                mfu_source=timing.mfu_source,
                devices=devices,
                wall_hours=timing.seconds / 3600,
                device_hours=timing.seconds * devices / 3600,
            )
        )
    total = sum(e.device_hours for e in estimates)
    unit = "GPU" if cluster.gpus_per_node else "CPU core"
    curve = machine.curve
    curve_name = (
        "the cluster file's mfu_curve"
        if cluster.mfu_curve
        else "default GPU curve, fitted to published H100 bf16 figures"
        if cluster.gpus_per_node
        else "default CPU curve, fitted to a bare PyTorch loop measured on one CPU core"
    )
    assumptions = [
        f"MFU(N total params) = {curve.formula()} ({curve_name})",
        "times an architecture factor: "
        + ("; ".join(sorted(used_factors.values())) or "none needed")
        + (f" (measured in {', '.join(factor_sources)})" if factor_sources else ""),
        *(f"fixed MFU for {a}: {v:g} (cluster file)" for a, v in sorted(cluster.mfu.items())),
        f"peak {cluster.peak_tflops:g} TFLOP/s (bf16 dense) per {unit}; {devices:g} {unit}(s) per trial "
        f"({spec.resources.workers_per_trial} worker(s) x {per_worker:g}); perfect data-parallel scaling",
        f"FLOPs = exact training FLOPs (6ND + attention) a trial runs (a cooldown branch: its cooldown); "
        f"+{cluster.startup_s:g} s per trial for start-up, evals, checkpoints"
        + (f"; +{machine.step_overhead_s:g} s per step of loop overhead" if machine.step_overhead_s else ""),
        f"{concurrent} trial(s) at once (resources.max_concurrent_trials={spec.resources.max_concurrent_trials}, "
        f"capped by what fits on {cluster.nodes} node(s)); longest-first packing; no failures, retries or queueing",
        *notes,
    ]
    return SweepEstimate(
        cluster=cluster.name,
        device=cluster.device,
        devices_per_trial=devices,
        concurrent_trials=concurrent,
        trials=estimates,
        total_device_hours=total,
        makespan_hours=makespan((e.wall_hours for e in estimates), concurrent),
        cost=None if cluster.price_per_device_hour is None else total * cluster.price_per_device_hour,
        assumptions=assumptions,
    )


def format_hours(hours: float) -> str:
    """0.0003 h -> '1.1s'; 0.5 -> '30.0min'; 30 -> '30.0h'; 500 -> '20.8d'."""
    seconds = hours * 3600
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    if hours < 48:
        return f"{hours:.1f}h"
    return f"{hours / 24:.1f}d"


def print_estimate(console: Any, estimate: SweepEstimate) -> None:
    """The estimate as a rich table, totals, and the assumptions it rests on."""
    from rich.table import Table

    from orchestrator.units import format_count

    unit = "GPU-h" if estimate.device.startswith("GPU") else "core-h"
    table = Table(title=f"on cluster {estimate.cluster}: {estimate.device}", title_justify="left")
    for column in ("trial", "arch", "total params", "FLOPs", "MFU", "devices", "wall", unit):
        table.add_column(column, justify="left" if column in ("trial", "arch") else "right")
    for t in estimate.trials:
        table.add_row(
            t.id[:8],
            t.label,
            format_count(t.params_total),
            f"{t.flops:.2e}",
            f"{t.mfu:.1%}",
            f"{t.devices:g}",
            format_hours(t.wall_hours),
            f"{t.device_hours:.3g}",
        )
    console.print(table)
    cost = f"; cost ~{estimate.cost:,.2f}" if estimate.cost is not None else ""
    console.print(
        f"total {estimate.total_device_hours:.3g} {unit} over {len(estimate.trials)} trial(s); make-span "
        f"~{format_hours(estimate.makespan_hours)} with {estimate.concurrent_trials} trial(s) at once{cost}"
    )
    console.print(
        "assumptions: " + "; ".join(estimate.assumptions), style="dim", highlight=False, markup=False
    )
