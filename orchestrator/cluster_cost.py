"""What a sweep would cost on a described cluster: device-hours per trial, total, and make-span.

``ceiling plan SPEC --cluster clusters/h100x8.yaml`` answers "how many GPU-hours, and how long, if I
submit this there?" before anything runs. The model is deliberately small and every number in it is
printed with the estimate:

    wall seconds of a trial  = training FLOPs (exact: 6ND + attention) / (devices x peak x MFU) + start-up
    device-hours of a trial  = wall seconds x devices / 3600
    MFU(arch, N)             = curve(N) x factor(arch)        (or the cluster file's mfu[arch] if given)
    curve(N)                 = mfu_max x N^slope / (N^slope + half_size^slope)     (N = total params)

The curve saturates: a 1M-parameter model keeps an H100 ~2% busy (kernel launches and tiny matmuls),
a 100M one ~30%, billions ~40%. Its default constants are least-squares fits (in log MFU) to the
anchor points below (:data:`GPU_ANCHORS`, :data:`CPU_ANCHORS`; refit with :func:`fit_mfu_curve`, which
a test does). ``factor(arch)`` is the architecture's MFU relative to the Transformer at equal size:
1.0 for the Transformer, read from ``bench/results/*.json`` when a benchmark has measured it (an
object with ``"mfu_factor": {"gla": 0.8, ...}``), else :data:`DEFAULT_OTHER_FACTOR`.

The make-span packs trials longest-first onto the sweep's concurrent slots: ``max_concurrent_trials``,
capped by how many trials' workers fit on the cluster at once. Not modelled: data-parallel scaling
losses inside a trial, evaluation and checkpoint time beyond ``startup_s``, queueing behind other
users, failures and retries.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.spec import NAME_PATTERN, SpecError, SweepSpec, _format_loc, _hint
from orchestrator.units import parse_count

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"
TRANSFORMER = "transformer"
# Mixers other than attention run through PyTorch chunked forms or Triton kernels that are less tuned
# than cuBLAS GEMMs + FlashAttention; until bench/ measures one, assume it reaches 60% of the
# Transformer's MFU at the same size (flash-linear-attention's GLA/RetNet kernels report roughly
# 0.5-0.8x of FlashAttention-2 training throughput at 1-2k context).
DEFAULT_OTHER_FACTOR = 0.6
MAX_MFU = 0.95

# (total parameters, MFU, source). Published: MosaicML llm-foundry "MPT Training Benchmarks",
# H100 80GB BF16 table, seq 2048, 8 GPUs (64 for 70B), no activation checkpointing where listed;
# Llama 3 (Dubey et al. 2024, Table 4): 38-43% BF16 MFU at 405B on H100s. Below ~100M no
# published H100 figures exist: the 1M/10M/125M points are estimates from kernel-launch arithmetic
# (a 1M model's step is ~0.1 ms of math on an H100 but ~3-4 ms of launches) and from the A100 table's
# 125M figure (44.8%) scaled by the H100/A100 ratio seen at 760M (34.9/56.9).
GPU_ANCHORS: tuple[tuple[float, float, str], ...] = (
    (1e6, 0.02, "estimate: launch-bound"),
    (1e7, 0.10, "estimate: launch-bound"),
    (1.25e8, 0.28, "estimate: llm-foundry A100 125M x H100/A100 ratio"),
    (7.60e8, 0.349, "llm-foundry H100 bf16 760M"),
    (1.32e9, 0.418, "llm-foundry H100 bf16 1B"),
    (2.65e9, 0.437, "llm-foundry H100 bf16 3B"),
    (6.66e9, 0.464, "llm-foundry H100 bf16 7B"),
    (1.285e10, 0.398, "llm-foundry H100 bf16 13B"),
    (3.0e10, 0.381, "llm-foundry H100 bf16 30B"),
    (6.49e10, 0.426, "llm-foundry H100 bf16 70B"),
    (4.05e11, 0.40, "Llama 3 405B, H100"),
)
# Measured here (bare PyTorch loop, bf16 weights, one thread, batch 32 x 128 tokens, AdamW) on one
# core of a 2-core AMD EPYC with avx512_bf16, against a nominal 0.1 TFLOP/s peak per core.
CPU_ANCHORS: tuple[tuple[float, float, str], ...] = (
    (3.32e4, 0.073, "measured: transformer 20k non-embedding, 1 core"),
    (2.11e5, 0.227, "measured: transformer 200k non-embedding, 1 core"),
    (2.04e6, 0.538, "measured: transformer 2M non-embedding, 1 core"),
)


class ClusterError(SpecError):
    """A cluster file that cannot be used, or a sweep that cannot run on the described cluster."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MfuCurve(_Strict):
    """``mfu(N) = max * N^slope / (N^slope + half_size^slope)``: saturating in model size."""

    max: float = Field(gt=0, le=1, description="MFU approached by very large models")
    half_size: float = Field(gt=0, description="total parameters at which MFU is half of max")
    slope: float = Field(gt=0, le=4, description="how fast MFU rises with log size")

    @field_validator("half_size", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return parse_count(value, what="half_size (parameters)")

    def __call__(self, params: float) -> float:
        x = (max(params, 1.0) / self.half_size) ** self.slope
        return self.max * x / (1.0 + x)

    def formula(self) -> str:
        return f"{self.max:.3g} * N^{self.slope:.3g} / (N^{self.slope:.3g} + {self.half_size:.3g}^{self.slope:.3g})"


GPU_CURVE = MfuCurve(max=0.42, half_size=4.6e7, slope=0.78)  # fit_mfu_curve(GPU_ANCHORS)
CPU_CURVE = MfuCurve(max=0.78, half_size=6.9e5, slope=0.75)  # fit_mfu_curve(CPU_ANCHORS); >2M extrapolated


def fit_mfu_curve(anchors: tuple[tuple[float, float, str], ...] | list) -> MfuCurve:
    """Least-squares fit of the curve to (params, mfu, ...) points, in log MFU (scipy, lazily)."""
    import numpy as np
    from scipy.optimize import least_squares

    params = np.array([a[0] for a in anchors], dtype=float)
    mfu = np.array([a[1] for a in anchors], dtype=float)

    def residuals(theta: np.ndarray) -> np.ndarray:
        top, log_half, slope = theta
        x = (params / 10.0**log_half) ** slope
        return np.log(top * x / (1 + x)) - np.log(mfu)

    result = least_squares(residuals, [0.5, 7.0, 0.8], bounds=([0.01, 2.0, 0.1], [1.0, 13.0, 4.0]))
    top, log_half, slope = (float(v) for v in result.x)
    return MfuCurve(max=top, half_size=10.0**log_half, slope=slope)


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
            f"{_format_loc(tuple(e['loc']))}: {_cluster_hint(e)}" if e["loc"] else _cluster_hint(e)
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
    return _hint(error)


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster YAML file (safe-loaded)."""
    path = Path(path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in (REPO_ROOT / "clusters").glob("*.yaml"))) or "none found"
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


def arch_factors(results_dir: str | Path | None = None) -> tuple[dict[str, float], list[str]]:
    """Per-architecture MFU factors (vs the Transformer) measured by bench/, and the files they came from.

    Reads every ``*.json`` in ``results_dir`` (default ``$CEILING_BENCH_RESULTS`` or bench/results),
    oldest first so the newest measurement wins; a file is one JSON object (or ends with one line of
    JSON, the benchmarks' convention) with ``"mfu_factor": {arch: factor}``. Unreadable files are skipped.
    """
    directory = Path(results_dir or os.environ.get("CEILING_BENCH_RESULTS") or DEFAULT_RESULTS_DIR)
    factors: dict[str, float] = {}
    sources: list[str] = []
    if not directory.is_dir():
        return factors, sources
    for path in sorted(directory.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
        document = _read_json_object(path)
        table = document.get("mfu_factor") if document else None
        if not isinstance(table, dict):
            continue
        used = False
        for arch, value in table.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 10:
                factors[str(arch)] = float(value)
                used = True
        if used:
            sources.append(path.name)
    return factors, sources


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    for candidate in (text, (text.strip().splitlines() or [""])[-1]):
        try:
            document = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(document, dict):
            return document
    return None


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
    factors = dict(factors or {})
    peak = cluster.peak_tflops * 1e12
    curve = cluster.curve
    estimates: list[TrialEstimate] = []
    used_factors: dict[str, str] = {}
    for trial in trials:
        params = int(trial.accounting["total_params"])
        if trial.arch in cluster.mfu:
            mfu, source = cluster.mfu[trial.arch], "cluster file"
        else:
            if trial.arch in factors:
                factor, source = factors[trial.arch], "bench/results"
            elif trial.arch == TRANSFORMER:
                factor, source = 1.0, "baseline"
            else:
                factor, source = DEFAULT_OTHER_FACTOR, "default (not measured)"
            used_factors[trial.arch] = f"{trial.arch} x{factor:g} [{source}]"
            mfu = min(MAX_MFU, curve(params) * factor)
        seconds = trial.flops_exact / (devices * peak * mfu) + cluster.startup_s
        estimates.append(
            TrialEstimate(
                id=trial.id,
                label=trial.label,
                arch=trial.arch,
                params_total=params,
                flops=float(trial.flops_exact),
                mfu=mfu,
                mfu_source=source,
                devices=devices,
                wall_hours=seconds / 3600,
                device_hours=seconds * devices / 3600,
            )
        )
    slots = [0.0] * concurrent
    for hours in sorted((e.wall_hours for e in estimates), reverse=True):
        slots[slots.index(min(slots))] += hours
    total = sum(e.device_hours for e in estimates)
    unit = "GPU" if cluster.gpus_per_node else "CPU core"
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
        f"FLOPs = exact training FLOPs (6ND + attention); +{cluster.startup_s:g} s per trial for start-up, evals, checkpoints",
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
        makespan_hours=max(slots) if slots else 0.0,
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
