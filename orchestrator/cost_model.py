"""How long a trial takes, and a sweep: the one time model behind ``ceiling plan``'s estimate (this
machine) and ``ceiling plan --cluster`` (a described cluster; see ``orchestrator/cluster_cost.py``).

    seconds(trial) = startup_s + steps x step_overhead_s / factor(arch)
                     + FLOPs / (devices x peak x MFU(arch, N))
    MFU(arch, N)   = min(0.95, curve(N) x factor(arch))      (or a cluster file's fixed mfu[arch])
    curve(N)       = max x N^slope / (N^slope + half_size^slope)              N = total parameters
    make-span      = trials packed longest-first onto the concurrent slots

``steps`` and ``FLOPs`` are what the trial itself runs (a cooldown branch only its cooldown). The curve
saturates: small models keep a device busy only a little of the time (kernel launches and dispatch per
op), big ones approach ``max``. ``step_overhead_s`` is what a trial's loop costs per optimizer step on
top of the bare PyTorch step the curve was fitted to. ``factor(arch)`` is an architecture's speed relative
to the Transformer at equal size: measured files when given (:func:`arch_factors`), else 1.0 on CPU and
:data:`DEFAULT_OTHER_FACTOR` on GPU.

Not modelled: data-parallel scaling losses inside a trial, queueing behind other users or other jobs on
the same machine (the estimates are for an idle one), failures and retries, waiting for a trunk or a
tuning search.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.units import parse_count

TRANSFORMER = "transformer"
MAX_MFU = 0.95
# Mixers other than attention run through PyTorch chunked forms or Triton kernels that are less tuned
# than cuBLAS GEMMs + FlashAttention; until bench/ measures one, assume it reaches 60% of the
# Transformer's MFU at the same size on a GPU (flash-linear-attention's GLA/RetNet kernels report roughly
# 0.5-0.8x of FlashAttention-2 training throughput at 1-2k context).
DEFAULT_OTHER_FACTOR = 0.6
# On CPU every mixer runs PyTorch ops: a bare training step of the other 11 architectures at the CPU
# studies' shape (seq 64, 2048 tokens, 16k and 64k parameters, bf16, one thread) took 1.0-1.2x the
# Transformer's on average (0.3x GLA to 2.5x Griffin; measured on the 2-core EPYC, 2026-12-06).
DEFAULT_OTHER_FACTOR_CPU = 1.0

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
# core of a 2-core AMD EPYC with avx512_bf16, against a nominal 0.1 TFLOP/s peak per core. The low MFU
# of tiny models is their per-step overhead: a 33k-parameter step is mostly fixed per-op cost.
CPU_ANCHORS: tuple[tuple[float, float, str], ...] = (
    (3.32e4, 0.073, "measured: transformer 20k non-embedding, 1 core"),
    (2.11e5, 0.227, "measured: transformer 200k non-embedding, 1 core"),
    (2.04e6, 0.538, "measured: transformer 2M non-embedding, 1 core"),
)

# This machine when no cluster file describes it (`ceiling plan` without --cluster); the same constants
# as clusters/local-cpu.yaml, so both estimates agree.
CPU_PEAK_FLOPS = 1e11  # per core: nominal AVX-512 (2 FMA pipes x 16 fp32 lanes x 2 x ~3 GHz)
GPU_PEAK_FLOPS = 989e12  # per GPU: H100 SXM dense bf16 (clusters/h100x8.yaml), when no cluster names one
# Per trial on warm workers: a trial starts in about a second (README: median start-up 0.13 s, the
# cpu-ladder run of 2026-12-06: a median 0.7 s between trials on a worker), plus the engine set-up, the
# first and final evals and checkpoints (1-2 s for the CPU studies' 47-step tuning trials).
LOCAL_STARTUP_S = 3.0
# The trial loop beyond a bare PyTorch step (DeepSpeed's optimizer step, loss sync, heartbeats, evals
# and checkpoints every 50-64 steps): bench/overhead.py measured a trial through ceiling at 0.958x the
# bare loop's throughput with ~0.5 s steps (README), i.e. ~0.02 s per step.
# Checks of the whole CPU model (2 cores, idle): examples/quickstart.yaml ~4.5 min (README: 4-5 min);
# examples/cpu-study.yaml ~17 min (measured 34 min at commit 61a07a9 on a machine shared with other
# jobs, docs/results/cpu-study.md); the cpu-ladder run of 2026-12-06 took 45 min for 358 trials the
# model puts at 31 min, at a load average of ~5 on the 2 cores. The old flat 3 GFLOP/s per core said
# 20 min for the quickstart.
CPU_STEP_OVERHEAD_S = 0.02


class MfuCurve(BaseModel):
    """``mfu(N) = max * N^slope / (N^slope + half_size^slope)``: saturating in model size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


@dataclass(frozen=True)
class Machine:
    """The constants of the time model for one kind of device."""

    gpu: bool
    peak_flops: float  # per device
    curve: MfuCurve
    startup_s: float
    step_overhead_s: float = 0.0
    fixed_mfu: Mapping[str, float] = field(default_factory=dict)  # per architecture, used as is


def local_machine(gpu: bool) -> Machine:
    """This machine, when no cluster file describes it: CPU cores, or GPUs taken to be H100s."""
    if gpu:  # launch overhead is inside the GPU curve (its small-model anchors), so no per-step term
        return Machine(gpu=True, peak_flops=GPU_PEAK_FLOPS, curve=GPU_CURVE, startup_s=LOCAL_STARTUP_S)
    return Machine(
        gpu=False,
        peak_flops=CPU_PEAK_FLOPS,
        curve=CPU_CURVE,
        startup_s=LOCAL_STARTUP_S,
        step_overhead_s=CPU_STEP_OVERHEAD_S,
    )


@dataclass(frozen=True)
class ArchFactors:
    """Measured speed factors per architecture (vs the Transformer) and the files they came from."""

    measured: Mapping[str, float] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def factor(self, arch: str, gpu: bool) -> tuple[float, str]:
        if arch in self.measured:
            return self.measured[arch], "bench/results"
        if arch == TRANSFORMER:
            return 1.0, "baseline"
        return (DEFAULT_OTHER_FACTOR if gpu else DEFAULT_OTHER_FACTOR_CPU), "default (not measured)"


@dataclass(frozen=True)
class TrialWork:
    """What the time model reads from a planned trial."""

    arch: str
    params_total: int
    flops: float  # what the trial itself runs
    steps: float


def trial_work(trial: Any) -> TrialWork:
    """A ``PlannedTrial``'s work; look-alikes (tests, scripts) may carry only ``flops_exact``."""
    exact = float(trial.flops_exact)
    flops = float(getattr(trial, "flops_to_run", exact))  # a branch runs only its cooldown
    steps = float(getattr(trial, "steps", 0))
    return TrialWork(
        arch=trial.arch,
        params_total=int(trial.accounting["total_params"]),
        flops=flops,
        steps=steps * flops / exact if exact else steps,
    )


@dataclass(frozen=True)
class TrialTime:
    seconds: float
    mfu: float
    mfu_source: str
    factor: float | None  # None when the cluster file fixed the MFU
    factor_source: str


def trial_time(work: TrialWork, machine: Machine, devices: float, factors: ArchFactors) -> TrialTime:
    """Wall seconds of one trial on ``devices`` devices of ``machine`` (perfect data-parallel scaling)."""
    factor, factor_source = factors.factor(work.arch, machine.gpu)
    if work.arch in machine.fixed_mfu:
        mfu, source, used = machine.fixed_mfu[work.arch], "cluster file", None
    else:
        mfu, source, used = min(MAX_MFU, machine.curve(work.params_total) * factor), factor_source, factor
    seconds = (
        machine.startup_s
        + work.steps * machine.step_overhead_s / factor
        + work.flops / (devices * machine.peak_flops * mfu)
    )
    return TrialTime(seconds=seconds, mfu=mfu, mfu_source=source, factor=used, factor_source=factor_source)


def makespan(durations: Iterable[float], slots: int) -> float:
    """Longest-first greedy packing onto ``slots`` concurrent slots (any unit)."""
    loads = [0.0] * slots
    for duration in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += duration
    return max(loads) if loads else 0.0


def arch_factors(path: str | Path | None = None) -> tuple[dict[str, float], list[str]]:
    """Per-architecture MFU factors (vs the Transformer) from measurement files, and the files used.

    ``path`` is a JSON file or a folder of them; without one, ``$CEILING_BENCH_RESULTS`` (bench/ writes
    its results under bench/results/ in a checkout; an installed package has no such folder, so none is
    assumed). Each file is one JSON object, or ends with one line of JSON (the benchmarks' convention),
    with ``"mfu_factor": {arch: factor}``; in a folder the newest file wins. Unreadable files are
    skipped. Nothing given or nothing measured: ``({}, [])``, and :meth:`ArchFactors.factor`'s defaults.
    """
    path = path or os.environ.get("CEILING_BENCH_RESULTS")
    if not path:
        return {}, []
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    else:
        return {}, []
    measured: dict[str, float] = {}
    sources: list[str] = []
    for file in files:
        document = _read_json_object(file)
        table = document.get("mfu_factor") if document else None
        if not isinstance(table, dict):
            continue
        used = False
        for arch, value in table.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 10:
                measured[str(arch)] = float(value)
                used = True
        if used:
            sources.append(file.name)
    return measured, sources


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
