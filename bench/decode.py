"""Decode speed and state size after a long context, per architecture (issue 16).

For every name in ``models.available()`` (or ``--archs``) at one non-embedding size: prefill a context of L
random tokens through the chunked forms (``model.prefill``), then generate ``--decode-tokens`` greedily
through ``step`` (recurrent state, or the Transformer's KV cache), at each L and batch
(``orchestrator.efficiency.decode_sweep``: timed runs interleaved across lengths). The smallest batch runs at every L, a larger one only where
batch x L <= ``--max-batch-tokens`` (its prefill costs batch x L tokens). Reported per architecture: decode
tokens/s at each L (all sequences of the batch counted), the state or cache bytes per sequence, the prefill
seconds, and the flatness = tokens/s at the longest L / at the shortest (smallest batch). A recurrent
model's step does the same work at every L, so it should stay >= 0.8 (timing noise on a shared machine
is what moves it); the Transformer's step attends over its whole cache, so its flatness is what the
cache costs.

The models are untrained (speed and bytes do not depend on the weights) and built with ``--seq-len``
as their training length (Griffin's window and Mega's chunk follow from it: min(1024, seq_len / 2)).

    python bench/decode.py                                     # 512, 2048, 8192 x batch 1, 8: a few minutes
    python bench/decode.py --lengths 512,2048,8192,32768       # the issue's 32k point (batch 8 up to 8192)
    python bench/decode.py --archs mamba,transformer --batch 1 --size 1e6
    python bench/decode.py --clock cpu     # decode steps timed in CPU seconds: steady on a busy machine

Prints a table per architecture, then as its last line one JSON object with the headline figures
(ratios first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import models  # noqa: E402
from orchestrator.efficiency import (  # noqa: E402
    DecodeMeasurement,
    decode_flatness,
    decode_sweep,
    measure_decode,
)

BASELINE = "transformer"
FLAT_ENOUGH = 0.8  # the bar for a recurrent model: tokens/s at the longest L >= 0.8x the shortest


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{flag} takes comma-separated integers, e.g. 512,2048; got {text!r}"
        ) from error
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"{flag} takes positive integers, e.g. 512,2048; got {text!r}")
    return sorted(set(values))


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    unknown = [name for name in names if name not in models.available()]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(models.available())}"
        )
    return names


def _flatness_by_batch(sweep: list[DecodeMeasurement], batches: list[int]) -> dict[int, float]:
    """``decode_flatness`` at every batch measured at two or more lengths."""
    return {
        b: decode_flatness(sweep, batch=b)
        for b in batches
        if len({m.context_len for m in sweep if m.batch == b}) > 1
    }


def _print_table(name: str, sweep: list[DecodeMeasurement], lengths: list[int], batches: list[int]) -> None:
    print(f"\n== {name} ==")
    header = " ".join(f"{f'L={length}':>10s}" for length in lengths)
    print(f"{'':24s} {header}")

    def cells(batch: int, value) -> str:
        rows = {m.context_len: m for m in sweep if m.batch == batch}
        return " ".join(f"{value(rows[n]):>10s}" if n in rows else f"{'-':>10s}" for n in lengths)

    for batch in batches:
        print(f"{f'tokens/s  batch {batch}':24s} " + cells(batch, lambda m: f"{m.tokens_per_s:.1f}"))
        print(f"{f'prefill s batch {batch}':24s} " + cells(batch, lambda m: f"{m.prefill_s:.2f}"))
    print(f"{'state KiB / sequence':24s} " + cells(batches[0], lambda m: f"{m.state_bytes / 1024:.1f}"))
    flatness = _flatness_by_batch(sweep, batches)
    if flatness:
        listed = ", ".join(f"batch {b}: {value:.2f}" for b, value in flatness.items())
        print(f"flatness (tokens/s at the longest L / at the shortest): {listed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lengths",
        type=lambda text: _ints(text, "--lengths"),
        default=[512, 2048, 8192],
        help="context lengths L, comma-separated (default 512,2048,8192)",
    )
    parser.add_argument(
        "--batch",
        type=lambda text: _ints(text, "--batch"),
        default=[1, 8],
        help="batch sizes, comma-separated (default 1,8; flatness is reported at the smallest)",
    )
    parser.add_argument(
        "--archs", type=_names, default=None, help="comma-separated architectures (default: all)"
    )
    parser.add_argument("--size", default="1e6", help="non-embedding parameters of every model (default 1e6)")
    parser.add_argument("--seq-len", type=int, default=512, help="the models' training length (default 512)")
    parser.add_argument("--vocab", type=int, default=256, help="vocabulary size (default 256, bytes)")
    parser.add_argument(
        "--decode-tokens", type=int, default=32, help="tokens generated and timed (default 32)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed rounds, interleaved across lengths; tokens/s from the median step (default 5)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what times a decode step: wall seconds (default), or this thread's CPU seconds "
        "(needs --threads 1; steadier on a machine busy with other work)",
    )
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=65536,
        help="measure a batch above 1 only where batch x L <= this (default 65536: batch 8 up to L 8192)",
    )
    args = parser.parse_args(argv)
    for flag, value in (("--seq-len", args.seq_len), ("--vocab", args.vocab), ("--decode-tokens", args.decode_tokens),
                        ("--repeats", args.repeats), ("--threads", args.threads)):  # fmt: skip
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu times this thread only: use it with --threads 1")
    try:
        models.sizing.parse_size(args.size)
    except ValueError as error:
        parser.error(f"--size: {error}")
    torch.set_num_threads(args.threads)
    names = args.archs or models.available()
    lengths, batches = args.lengths, args.batch

    sweeps: dict[str, list[DecodeMeasurement]] = {}
    failed: dict[str, str] = {}
    started = time.perf_counter()
    for name in names:
        torch.manual_seed(0)
        try:
            model = models.build(name, size=args.size, vocab_size=args.vocab, seq_len=args.seq_len).eval()
            clock = time.thread_time if args.clock == "cpu" else time.perf_counter
            settings = {"decode_tokens": args.decode_tokens, "repeats": args.repeats, "clock": clock}
            # untimed: a fresh model's first calls pay for allocations and dispatch caches, which would
            # read as a slow shortest context and flatter the flatness
            measure_decode(model, context_len=lengths[0], **{**settings, "repeats": 1})
            sweeps[name] = [
                measurement
                for batch in batches
                for measurement in decode_sweep(
                    model,
                    context_lens=[
                        n for n in lengths if batch == batches[0] or batch * n <= args.max_batch_tokens
                    ],
                    batches=[batch],
                    **settings,
                )
            ]
        except Exception as error:  # one architecture's failure must not hide the others' numbers
            failed[name] = f"{type(error).__name__}: {error}"
            print(f"\n== {name} == FAILED: {failed[name]}", file=sys.stderr)
            continue
        _print_table(name, sweeps[name], lengths, batches)
        print(f"({time.perf_counter() - started:.0f} s so far)", file=sys.stderr)

    b0, longest = batches[0], lengths[-1]

    def at(name: str, length: int, batch: int) -> DecodeMeasurement:
        return next(m for m in sweeps[name] if m.context_len == length and m.batch == batch)

    by_batch = {name: _flatness_by_batch(sweep, batches) for name, sweep in sweeps.items()}
    flatness = {name: values[b0] for name, values in by_batch.items() if b0 in values}
    recurrent = {name: value for name, value in flatness.items() if name != BASELINE}
    headline: dict[str, Any] = {"decode_flatness": flatness}
    if BASELINE in sweeps:
        base = at(BASELINE, longest, b0)
        headline[f"decode_speedup_vs_{BASELINE}_at_L{longest}"] = {
            name: at(name, longest, b0).tokens_per_s / base.tokens_per_s
            for name in sweeps
            if name != BASELINE
        }
        headline[f"state_bytes_ratio_vs_{BASELINE}_at_L{longest}"] = {
            name: at(name, longest, b0).state_bytes / base.state_bytes for name in sweeps if name != BASELINE
        }
    headline["min_recurrent_flatness"] = min(recurrent.values()) if recurrent else None
    headline["min_recurrent_flatness_arch"] = min(recurrent, key=recurrent.get) if recurrent else None
    headline["recurrent_all_flat"] = (
        all(value >= FLAT_ENOUGH for value in recurrent.values()) if recurrent else None
    )
    headline["decode_flatness_by_batch"] = {
        name: {str(b): value for b, value in values.items()} for name, values in by_batch.items()
    }
    headline["decode_tokens_per_s"] = {
        name: {str(b): {str(m.context_len): m.tokens_per_s for m in sweep if m.batch == b} for b in batches}
        for name, sweep in sweeps.items()
    }
    headline["state_bytes"] = {
        name: {str(m.context_len): m.state_bytes for m in sweep if m.batch == b0}
        for name, sweep in sweeps.items()
    }
    headline["prefill_s"] = {
        name: {str(b): {str(m.context_len): m.prefill_s for m in sweep if m.batch == b} for b in batches}
        for name, sweep in sweeps.items()
    }
    headline["failed"] = failed
    headline["settings"] = {
        "size": args.size,
        "seq_len": args.seq_len,
        "vocab": args.vocab,
        "lengths": lengths,
        "batches": batches,
        "decode_tokens": args.decode_tokens,
        "repeats": args.repeats,
        "threads": args.threads,
        "clock": args.clock,
        "max_batch_tokens": args.max_batch_tokens,
        "wall_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(headline))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
