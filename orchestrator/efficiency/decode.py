"""Decode speed and state size after a long context: prefill ``L`` tokens, then generate token by token.

The prefill goes through ``model.prefill`` (the chunked training forms, returning the recurrent state or
the KV cache; see ``models.lm.LanguageModel.prefill``), so a 32k context costs one forward pass rather
than 32k ``step`` calls. Decoding then runs ``model.step`` greedily (each generated token is the argmax of
the previous logits), each step timed with ``time.perf_counter``, over ``repeats`` runs of
``decode_tokens`` steps, each run from a copy of the same post-prefill state, after one untimed warm-up
step (which also lets a KV cache grow its reserve, so the timed steps measure attention over the context,
not a one-off reallocation). Tokens/s = batch / the median step time: the median over every timed step
of every repeat, which a busy machine's preemptions (hitting a few steps) move far less than a mean or a
per-run total. Over ``decode_tokens`` steps from position ``L`` the context grows by at most a few
percent, so the Transformer's cost is that of ``L``.

A recurrent model's step costs the same at every ``L`` (its state does not grow), so its tokens/s should
be flat in ``L``: ``decode_flatness`` is tokens/s at the longest ``L`` over that at the shortest. A
Transformer's step attends over its whole cache, so its cost grows with ``L``: measured, not assumed.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from orchestrator.efficiency.memory import state_bytes


@dataclass(frozen=True)
class DecodeMeasurement:
    context_len: int  # L tokens prefilled before decoding
    batch: int
    decode_tokens: int  # tokens generated and timed
    tokens_per_s: float  # generated tokens per second, all sequences in the batch counted
    state_bytes: int  # bytes of recurrent state or KV cache per sequence after the prefill (measured)
    prefill_s: float  # wall seconds of the prefill


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def random_tokens(vocab_size: int, batch: int, length: int, seed: int) -> torch.Tensor:
    """``[batch, length]`` token ids drawn uniformly with a seeded generator (the content does not
    change the cost of any architecture here: no early exit, no data-dependent sparsity)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, length), generator=generator)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_seconds(
    model: Any, state: Any, next_B: torch.Tensor, decode_tokens: int, clock: Callable[[], float]
) -> list[float]:
    """Seconds (by ``clock``) of each of ``decode_tokens`` greedy steps from ``state`` (consumed)."""
    seconds = []
    for _ in range(decode_tokens):
        start = clock()
        logits_BV, state = model.step(next_B, state)
        next_B = logits_BV.argmax(dim=-1)
        synchronize(next_B.device)
        seconds.append(clock() - start)
    return seconds


@dataclass
class _Prefilled:
    """One context read and ready to decode from: the state after one untimed warm-up step."""

    context_len: int
    batch: int
    state: Any
    next_B: torch.Tensor
    state_bytes: int  # per sequence, right after the prefill
    prefill_s: float


def _check_settings(**values: Any) -> None:
    for name, value in values.items():
        _check_positive(name, value)


def _prefill(model: Any, context_len: int, batch: int, vocab_size: int | None, seed: int) -> _Prefilled:
    vocab_size = model.config.vocab_size if vocab_size is None else vocab_size
    _check_settings(context_len=context_len, batch=batch, vocab_size=vocab_size)
    device = next(model.parameters()).device
    tokens_BT = random_tokens(vocab_size, batch, context_len, seed).to(device)
    model.prefill(tokens_BT[:, : min(context_len, 64)], last_only=True)  # warm up kernels, allocator
    synchronize(device)
    start = time.perf_counter()
    logits_B1V, state = model.prefill(tokens_BT, last_only=True)
    synchronize(device)
    prefill_s = time.perf_counter() - start
    per_sequence_bytes = state_bytes(state) // batch
    # one untimed step: warms the step path and lets a KV cache reserve room past the context
    logits_BV, state = model.step(logits_B1V[:, -1].argmax(dim=-1), state)
    return _Prefilled(context_len, batch, state, logits_BV.argmax(dim=-1), per_sequence_bytes, prefill_s)


def _measurement(prefilled: _Prefilled, decode_tokens: int, step_seconds: list[float]) -> DecodeMeasurement:
    return DecodeMeasurement(
        context_len=prefilled.context_len,
        batch=prefilled.batch,
        decode_tokens=decode_tokens,
        tokens_per_s=prefilled.batch / statistics.median(step_seconds),
        state_bytes=prefilled.state_bytes,
        prefill_s=prefilled.prefill_s,
    )


def measure_decode(
    model: Any,
    *,
    context_len: int,
    batch: int = 1,
    decode_tokens: int = 32,
    repeats: int = 3,
    vocab_size: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> DecodeMeasurement:
    """Prefill ``context_len`` random tokens for ``batch`` sequences, then time ``decode_tokens`` greedy
    steps ``repeats`` times (tokens/s from the median step; see the module doc). ``vocab_size`` defaults
    to the model's. The model is used as given (eval mode, its device and dtype). ``clock`` times the
    steps: wall time by default; ``time.thread_time`` (this thread's CPU time, exact with one intra-op
    thread on CPU) leaves out the time other processes take the core, for steadier ratios on a busy
    machine. The prefill is always wall time."""
    _check_settings(decode_tokens=decode_tokens, repeats=repeats)
    with torch.inference_mode():
        prefilled = _prefill(model, context_len, batch, vocab_size, seed)
        seconds = [
            step_s
            for _ in range(repeats)
            for step_s in _step_seconds(
                model, copy.deepcopy(prefilled.state), prefilled.next_B, decode_tokens, clock
            )
        ]
    return _measurement(prefilled, decode_tokens, seconds)


def decode_sweep(
    model: Any,
    *,
    context_lens: Sequence[int],
    batches: Sequence[int] = (1,),
    decode_tokens: int = 32,
    repeats: int = 3,
    vocab_size: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> list[DecodeMeasurement]:
    """``measure_decode``'s measurement at every (batch, context length), batches outer, lengths ascending.

    Within a batch the timed runs are interleaved across lengths (all contexts are prefilled first, then
    each round times one run at every length), so a change in the machine's load during the sweep hits
    every length alike instead of skewing the ratio between the first and the last: what
    ``decode_flatness`` compares. Holds every length's state of one batch at once. ``clock``: as for
    ``measure_decode``.
    """
    if not context_lens:
        raise ValueError("context_lens must name at least one length, e.g. (512, 2048, 8192)")
    if not batches:
        raise ValueError("batches must name at least one batch size, e.g. (1, 8)")
    _check_settings(decode_tokens=decode_tokens, repeats=repeats)
    measurements: list[DecodeMeasurement] = []
    with torch.inference_mode():
        for batch in batches:
            prefilled = [_prefill(model, n, batch, vocab_size, seed) for n in sorted(set(context_lens))]
            seconds: list[list[float]] = [[] for _ in prefilled]
            for _ in range(repeats):
                for index, one in enumerate(prefilled):
                    seconds[index] += _step_seconds(
                        model, copy.deepcopy(one.state), one.next_B, decode_tokens, clock
                    )
            measurements += [
                _measurement(one, decode_tokens, s) for one, s in zip(prefilled, seconds, strict=True)
            ]
    return measurements


def decode_flatness(measurements: Sequence[DecodeMeasurement], batch: int = 1) -> float:
    """Tokens/s at the longest context over tokens/s at the shortest, among the measurements at
    ``batch`` (several at one length are averaged). 1.0 is perfectly flat; a recurrent model should
    stay >= 0.8, a Transformer's falls as its cache grows. ``ValueError`` with fewer than two lengths."""
    by_length: dict[int, list[float]] = {}
    for measurement in measurements:
        if measurement.batch == batch:
            by_length.setdefault(measurement.context_len, []).append(measurement.tokens_per_s)
    if len(by_length) < 2:
        raise ValueError(
            f"decode_flatness needs measurements at two or more context lengths for batch={batch}, "
            f"got lengths {sorted(by_length)}; measure more context_lens or pass the batch you measured"
        )
    shortest, longest = min(by_length), max(by_length)
    return statistics.fmean(by_length[longest]) / statistics.fmean(by_length[shortest])
