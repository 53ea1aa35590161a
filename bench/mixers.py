"""How fast are the token mixers, and how does their training cost grow with the context?

1. Ops: for every case of ``kernels.catalog.all_cases()``, forward + backward time of the fast form against
   the fp32 token-by-token reference at T = 1024 (B = 1, H = 2 or the op's ``OP_HEADS``, the op's own head
   dims); speedup = reference / fast. The fast form runs with the op's default chunk size (what training uses) unless
   ``--chunk-size`` is given; the reference runs once (it is slow).
2. Architectures: for every name in ``models.available()`` at a fixed non-embedding size, training time per
   token (forward + backward of the LM loss, no optimizer) at T in {512, 1024, 2048, 4096}; the growth
   T = 4096 / T = 512, and the crossover length where each architecture becomes cheaper per token than the
   Transformer of the same size (linear interpolation of the cost ratio in log T between measured points;
   an architecture already cheaper at the shortest length reports that length, "<= 512", as an upper bound;
   one never cheaper reports null, "none up to 4096").

New ops and architectures are picked up automatically. Times are the minimum over repeats (the least
disturbed by other processes).

    python bench/mixers.py                 # ~5-10 minutes on 2 CPU cores
    python bench/mixers.py --quick         # small settings, ~1-2 minutes
    python bench/mixers.py --size 1M --lengths 512 4096 --threads 2
    python bench/mixers.py --ops selective_scan fft_conv --archs mamba s4d   # only these (and the baseline)

Prints tables, then as its last line one JSON object with the headline figures (ratios first).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import models  # noqa: E402
from kernels.catalog import OpCase, all_cases  # noqa: E402

BASELINE = "transformer"
# ops timed at more heads than the others' 2: Mamba-1's selective scan is elementwise on [T, E, N] (no matmul
# form), so its speedup depends on the width; 10 heads x 16 channels = E 160, the 200k Mamba's d_inner
OP_HEADS = {"selective_scan": 10}


def _tensors(value: Any) -> list[torch.Tensor]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in _tensors(item)]


def _forward_backward_seconds(fn, inputs: dict[str, Any], kwargs: dict[str, Any]) -> float:
    """One forward + backward of ``fn`` on fresh leaf copies of ``inputs`` (a random linear loss on every
    output and final-state tensor, as the correctness tests use)."""
    leaves = {
        name: value.detach().clone().requires_grad_(value.requires_grad)
        if isinstance(value, torch.Tensor)
        else value
        for name, value in inputs.items()
    }
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    output, final_state = fn(**leaves, **kwargs)
    produced = [t for t in _tensors(output) + _tensors(final_state) if t.numel() and t.requires_grad]
    if produced:
        loss = sum((t.float() * torch.randn(t.shape, generator=generator)).sum() for t in produced)
        loss.backward()
    return time.perf_counter() - start


def _chunk_kwargs(case: OpCase, chunk_size: int | None) -> tuple[dict[str, Any], str]:
    """The case's fast kwargs with the chunk size set to ``chunk_size`` or, if None, the op's default."""
    kwargs = {k: v for k, v in case.fast_kwargs.items() if k != "chunk_size"}
    if not case.has_chunk_size:
        return kwargs, "-"
    if chunk_size is not None:
        kwargs["chunk_size"] = chunk_size
        return kwargs, str(chunk_size)
    parameter = inspect.signature(case.fast).parameters.get("chunk_size")
    default = "?" if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
    return kwargs, str(default)


def bench_ops(
    seq_len: int, batch: int, heads: int, repeats: int, chunk_size: int | None, only: list[str] | None = None
) -> dict[str, dict]:
    results: dict[str, dict] = {}
    print(
        f"\n== ops: forward + backward at B={batch} T={seq_len} H={heads} (H: ops timed at other widths) =="
    )
    print(f"{'op':28s} {'H':>3s} {'chunk':>6s} {'reference ms':>13s} {'fast ms':>9s} {'speedup':>8s}")
    for case in all_cases():
        if only is not None and case.name not in only:
            continue
        op_heads = OP_HEADS.get(case.name, heads)
        try:
            inputs = case.make_inputs(batch, seq_len, op_heads, torch.Generator().manual_seed(0))
            kwargs, chunk_label = _chunk_kwargs(case, chunk_size)
            _forward_backward_seconds(case.fast, inputs, kwargs)  # warm-up
            fast = min(_forward_backward_seconds(case.fast, inputs, kwargs) for _ in range(repeats))
            reference = _forward_backward_seconds(case.reference, inputs, {})
        except Exception as error:  # one broken op must not hide the others
            print(f"{case.name:28s} FAILED: {type(error).__name__}: {error}")
            results[case.name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        speedup = reference / fast
        results[case.name] = {
            "speedup": round(speedup, 2),
            "fast_ms": round(1e3 * fast, 3),
            "reference_ms": round(1e3 * reference, 2),
            "chunk_size": chunk_label,
            "heads": op_heads,
        }
        print(
            f"{case.name:28s} {op_heads:3d} {chunk_label:>6s} {1e3 * reference:13.1f} {1e3 * fast:9.2f} {speedup:7.1f}x"
        )
    return results


def _train_step_seconds(model, tokens_BT: torch.Tensor) -> float:
    start = time.perf_counter()
    logits = model(tokens_BT[:, :-1])
    loss = F.cross_entropy(logits.flatten(0, 1), tokens_BT[:, 1:].flatten())
    loss.backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def arch_cost(
    name: str, size: str, lengths: list[int], batch: int, repeats: int, vocab: int
) -> dict[int, float]:
    """Microseconds per trained token at each length, for one fixed network: the model is built for the
    shortest length (Griffin's window and Mega's chunk follow the context they are sized for, so a model
    rebuilt per length would change its attention span, not just its input) and the same weights are
    then trained at every length."""
    per_token: dict[int, float] = {}
    torch.manual_seed(0)
    model = models.build(name, size=size, vocab_size=vocab, seq_len=min(lengths))
    for seq_len in lengths:
        tokens_BT = torch.randint(0, vocab, (batch, seq_len + 1), generator=torch.Generator().manual_seed(1))
        _train_step_seconds(model, tokens_BT)  # warm-up
        seconds = min(_train_step_seconds(model, tokens_BT) for _ in range(repeats))
        per_token[seq_len] = 1e6 * seconds / (batch * seq_len)
    return per_token


def crossover(ratios: dict[int, float]) -> tuple[float | None, str]:
    """First length where ``ratios`` (cost / baseline cost) drops below 1, interpolated linearly in log T."""
    points = sorted(ratios.items())
    if points[0][1] < 1.0:
        return float(points[0][0]), f"<= {points[0][0]} (cheaper at every length)"
    for (t1, r1), (t2, r2) in zip(points[:-1], points[1:], strict=True):
        if r1 >= 1.0 > r2:
            log_t = math.log(t1) + (r1 - 1.0) / (r1 - r2) * (math.log(t2) - math.log(t1))
            return round(math.exp(log_t), 1), f"{math.exp(log_t):.0f}"
    return None, f"none up to {points[-1][0]}"


def bench_archs(
    size: str, lengths: list[int], batch: int, repeats: int, vocab: int, only: list[str] | None = None
) -> dict[str, dict]:
    names = [n for n in models.available() if only is None or n in only or n == BASELINE]
    print(f"\n== architectures: training us/token at size {size} (non-embedding), batch {batch} ==")
    costs: dict[str, dict[int, float]] = {}
    errors: dict[str, str] = {}
    for name in [BASELINE] + [n for n in names if n != BASELINE]:
        try:
            costs[name] = arch_cost(name, size, lengths, batch, repeats, vocab)
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
    lo, hi = lengths[0], lengths[-1]
    header = " ".join(f"{'T=' + str(t):>9s}" for t in lengths)
    print(f"{'architecture':16s} {header} {f'{hi}/{lo}':>9s} {'crossover vs ' + BASELINE:>24s}")
    results: dict[str, dict] = {}
    for name, per_token in costs.items():
        growth = per_token[hi] / per_token[lo]
        entry: dict[str, Any] = {"growth": round(growth, 3)}
        label = "(baseline)"
        if name != BASELINE and BASELINE in costs:
            ratios = {t: per_token[t] / costs[BASELINE][t] for t in lengths}
            entry["crossover_T"], label = crossover(ratios)
            entry["cost_ratio_vs_baseline"] = {str(t): round(r, 3) for t, r in ratios.items()}
        entry["us_per_token"] = {str(t): round(v, 2) for t, v in per_token.items()}
        entry["crossover"] = label
        results[name] = entry
        cells = " ".join(f"{per_token[t]:9.1f}" for t in lengths)
        print(f"{name:16s} {cells} {growth:9.2f} {label:>24s}")
    for name, error in errors.items():
        print(f"{name:16s} FAILED: {error}")
        results[name] = {"error": error}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small settings: size 50k, T 128..1024, ops at T 256"
    )
    parser.add_argument(
        "--size", default=None, help="non-embedding size of every architecture (default 200k)"
    )
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=None, help="context lengths (default 512..4096)"
    )
    parser.add_argument("--batch", type=int, default=1, help="sequences per training step (default 1)")
    parser.add_argument("--op-seq-len", type=int, default=None, help="T of the op comparison (default 1024)")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="chunk size of the fast ops (default: each op's)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats, the minimum is kept (default 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--vocab", type=int, default=256, help="vocabulary size (default 256, bytes)")
    parser.add_argument("--ops", nargs="+", default=None, help="only these ops (default: every op)")
    parser.add_argument(
        "--archs", nargs="+", default=None, help="only these architectures, plus the baseline (default: all)"
    )
    parser.add_argument("--skip-ops", action="store_true")
    parser.add_argument("--skip-archs", action="store_true")
    args = parser.parse_args(argv)
    size = args.size or ("50k" if args.quick else "200k")
    lengths = sorted(args.lengths or ([128, 256, 512, 1024] if args.quick else [512, 1024, 2048, 4096]))
    op_seq_len = args.op_seq_len or (256 if args.quick else 1024)
    repeats = args.repeats or (2 if args.quick else 3)
    if args.batch < 1 or repeats < 1 or op_seq_len < 1 or any(t < 2 for t in lengths):
        parser.error("--batch, --repeats, --op-seq-len must be >= 1 and --lengths >= 2")
    torch.set_num_threads(args.threads)

    ops = {} if args.skip_ops else bench_ops(op_seq_len, 1, 2, repeats, args.chunk_size, args.ops)
    archs = {} if args.skip_archs else bench_archs(size, lengths, args.batch, repeats, args.vocab, args.archs)

    speedups = {name: r["speedup"] for name, r in ops.items() if "speedup" in r}
    growths = {name: r["growth"] for name, r in archs.items() if "growth" in r and name != BASELINE}
    worst = max(growths, key=growths.get) if growths else None
    headline: dict[str, Any] = {
        "min_chunked_speedup": min(speedups.values()) if speedups else None,
        "min_chunked_speedup_op": min(speedups, key=speedups.get) if speedups else None,
        f"max_cost_growth_{lengths[0]}_to_{lengths[-1]}": growths[worst] if worst else None,
        "max_cost_growth_arch": worst,
        "baseline_cost_growth": archs.get(BASELINE, {}).get("growth"),
        "per_op": ops,
        "per_arch": archs,
        "settings": {
            "size": size,
            "lengths": lengths,
            "batch": args.batch,
            "op_seq_len": op_seq_len,
            "repeats": repeats,
            "threads": args.threads,
            "torch": torch.__version__,
        },
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
