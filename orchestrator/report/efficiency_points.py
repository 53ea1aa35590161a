"""The efficiency study's measurements aggregated for people: one model per (architecture, size), the
Pareto frontier of quality against decode cost, costs relative to the baseline (speedup, memory saving,
the crossover context length) and extrapolation curves. Shared by the report, the claims table and the
dashboard; reads the flat rows of ``orchestrator.store.efficiency.measurements``. Standard library only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import mean
from typing import Any


@dataclass
class ModelCosts:
    """One architecture at one size, its numbers averaged over seeds."""

    label: str
    arch: str
    size_target: float
    params: float  # non-embedding parameters
    seeds: int
    val_loss: float | None
    copy_score: float | None
    decode_tps: dict[tuple[int, int], float] = field(default_factory=dict)  # (L, batch) -> tokens/s
    state_bytes: dict[int, float] = field(default_factory=dict)  # L -> bytes per sequence
    kv_analytic: dict[int, float] = field(default_factory=dict)  # L -> the Transformer's counted bytes
    prefill_tps: dict[int, float] = field(default_factory=dict)  # length -> tokens/s (batch 1)
    train_tps: dict[int, float] = field(default_factory=dict)  # length -> training tokens/s (fwd + bwd)
    extrapolation: dict[int, float] = field(default_factory=dict)  # evaluated length -> val loss
    positions: dict[int, dict[int, float]] = field(default_factory=dict)  # length -> bucket start -> loss

    @property
    def name(self) -> str:
        return f"{self.label} {_size(self.size_target)}"

    def decode_ms(self, length: int) -> float | None:
        """Milliseconds per generated token at batch 1 after ``length`` tokens of context."""
        tps = self.decode_tps.get((length, 1))
        return None if not tps else 1000.0 / tps

    @property
    def contexts(self) -> list[int]:
        return sorted({length for length, batch in self.decode_tps if batch == 1})

    @property
    def train_len(self) -> int | None:
        return min(self.extrapolation) if self.extrapolation else None

    def flatness(self) -> float | None:
        contexts = self.contexts
        if len(contexts) < 2:
            return None
        return self.decode_tps[(contexts[-1], 1)] / self.decode_tps[(contexts[0], 1)]


def _size(size: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if size >= scale:
            return f"{size / scale:g}{unit}"
    return f"{size:g}"


def model_costs(rows: Iterable[dict[str, Any]]) -> list[ModelCosts]:
    """One ModelCosts per (label, size target) from measurement rows, seeds averaged."""
    by_trial: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_trial[row["trial_id"]].append(row)
    by_model: dict[tuple[str, float], list[list[dict[str, Any]]]] = defaultdict(list)
    for trial_rows in by_trial.values():
        first = trial_rows[0]
        by_model[(first["label"], float(first["size_target"]))].append(trial_rows)
    return [_model(trials) for _, trials in sorted(by_model.items())]


def _avg(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return mean(present) if present else None


def _model(trials: list[list[dict[str, Any]]]) -> ModelCosts:
    first = trials[0][0]
    model = ModelCosts(
        label=first["label"],
        arch=first["arch"],
        size_target=float(first["size_target"]),
        params=float(mean(t[0]["params_non_embedding"] for t in trials)),
        seeds=len(trials),
        val_loss=_avg(t[0]["final_val_loss"] for t in trials),
        copy_score=_avg(t[0].get("copy_score") for t in trials),
    )
    collected: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for trial_rows in trials:
        for r in trial_rows:
            collected[(r["measure"], r["metric"], r["length"], r["batch"], r["position"])].append(r["value"])
    for (measure, metric, length, batch, position), values in collected.items():
        value = mean(values)
        if measure == "decode" and metric == "tokens_per_s":
            model.decode_tps[(length, batch)] = value
        elif measure == "decode" and metric == "state_bytes" and batch == 1:
            model.state_bytes[length] = value
        elif measure == "decode" and metric == "kv_cache_bytes_analytic" and batch == 1:
            model.kv_analytic[length] = value
        elif measure == "prefill" and metric == "tokens_per_s" and batch == 1:
            model.prefill_tps[length] = value
        elif measure == "prefill" and metric == "train_tokens_per_s" and batch == 1:
            model.train_tps[length] = value
        elif measure == "extrapolation" and metric == "loss":
            model.extrapolation[length] = value
        elif measure == "position" and metric == "loss":
            model.positions.setdefault(length, {})[position] = value
    return model


def chosen_context(models: Sequence[ModelCosts], wanted: int | None = None) -> int | None:
    """``wanted`` if every model was measured there, else the longest context all share."""
    shared = set.intersection(*(set(m.contexts) for m in models)) if models else set()
    if wanted is not None and wanted in shared:
        return wanted
    return max(shared) if shared else None


def pareto_front(models: Sequence[ModelCosts], length: int) -> list[ModelCosts]:
    """Models no other beats on both decode cost at ``length`` and validation loss, cheapest first."""
    points = [m for m in models if m.decode_ms(length) is not None and m.val_loss is not None]
    front = [
        m
        for m in points
        if not any(
            o is not m
            and o.decode_ms(length) <= m.decode_ms(length)
            and o.val_loss <= m.val_loss
            and (o.decode_ms(length) < m.decode_ms(length) or o.val_loss < m.val_loss)
            for o in points
        )
    ]
    return sorted(front, key=lambda m: m.decode_ms(length))


@dataclass(frozen=True)
class Relative:
    """One model against the baseline at the same size target, at each shared context length."""

    model: ModelCosts
    baseline: ModelCosts
    speedup: dict[int, float]  # L -> tokens/s over the baseline's, batch 1
    batch_speedup: dict[tuple[int, int], float]  # (L, batch > 1) -> the same at a larger batch
    memory_saving: dict[int, float]  # L -> 1 - state bytes / the baseline's
    crossover: float | None  # the L where its decode becomes cheaper than the baseline's (interpolated)
    crossover_text: str
    memory_crossover: float | None
    memory_crossover_text: str


def relative_costs(models: Sequence[ModelCosts], baseline: str = "transformer") -> list[Relative]:
    """Every non-baseline model against the baseline of its size target (models without one are skipped)."""
    base = {m.size_target: m for m in models if m.label == baseline}
    out = []
    for model in models:
        reference = base.get(model.size_target)
        if model.label == baseline or reference is None:
            continue
        shared = sorted(set(model.contexts) & set(reference.contexts))
        speedup = {L: model.decode_tps[(L, 1)] / reference.decode_tps[(L, 1)] for L in shared}
        batches = {
            key: model.decode_tps[key] / reference.decode_tps[key]
            for key in model.decode_tps
            if key[1] > 1 and key in reference.decode_tps
        }
        memory = {
            L: 1.0 - model.state_bytes[L] / reference.state_bytes[L]
            for L in sorted(set(model.state_bytes) & set(reference.state_bytes))
            if reference.state_bytes[L] > 0
        }
        # cheaper once the baseline's cost over ours passes 1: a speedup above 1, a state smaller than its cache
        cross, text = crossover(speedup)
        held = sorted(set(model.state_bytes) & set(reference.state_bytes))
        mem_cross, mem_text = crossover(
            {L: reference.state_bytes[L] / model.state_bytes[L] for L in held if model.state_bytes[L] > 0}
        )
        out.append(Relative(model, reference, speedup, batches, memory, cross, text, mem_cross, mem_text))
    return out


def crossover(advantage: dict[int, float]) -> tuple[float | None, str]:
    """The context length where ``advantage`` (the baseline's cost over ours) first reaches 1, found by
    interpolating log advantage linearly in log L between the two measured lengths around it."""
    if not advantage:
        return None, "not measured"
    lengths = sorted(advantage)
    if advantage[lengths[0]] >= 1:
        return float(lengths[0]), f"cheaper at every L measured (from {lengths[0]})"
    for low, high in zip(lengths, lengths[1:], strict=False):
        a, b = advantage[low], advantage[high]
        if b >= 1 > a:
            if math.isinf(b):
                return float(high), f"between {low} and {high}"
            t = -math.log(a) / (math.log(b) - math.log(a))
            at = math.exp(math.log(low) + t * (math.log(high) - math.log(low)))
            return at, f"~{at:,.0f} (between {low} and {high})"
    return None, f"not cheaper up to L = {lengths[-1]}"


def growth_exponent(values: dict[int, float]) -> float | None:
    """The least-squares slope of log value against log length (1: linear, 2: quadratic)."""
    points = [(math.log(L), math.log(v)) for L, v in sorted(values.items()) if v > 0]
    if len(points) < 2:
        return None
    mx, my = mean(p[0] for p in points), mean(p[1] for p in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def prefill_seconds(model: ModelCosts) -> dict[int, float]:
    """Seconds of one prefill at each measured length (batch 1)."""
    return {L: L / tps for L, tps in model.prefill_tps.items() if tps > 0}


def largest_per_label(models: Sequence[ModelCosts]) -> dict[str, ModelCosts]:
    """Each architecture's largest size: where the comparisons at matched parameters are read."""
    out: dict[str, ModelCosts] = {}
    for model in models:
        if model.label not in out or model.size_target > out[model.label].size_target:
            out[model.label] = model
    return out
