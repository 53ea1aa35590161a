"""How fast are the token-mixing kernels on a GPU: ours (Triton) against the PyTorch chunked forms and
flash-linear-attention (when installed), for every op behind ``kernels.dispatch``.

For each op (``chunk_gla`` with per-head and per-key-channel decays, ``chunk_gated_delta_rule``,
``chunk_generalized_delta_rule``, ``linear_scan``, ``selective_scan``) at B = 8, H = 16, head dim in
{64, 128}, T in {2048, 8192}, bf16 activations (decays and step sizes fp32, as the models pass them):
forward and forward + backward time (median of repeats, CUDA events), training tokens/s, achieved
bandwidth and, for the chunked linear-attention ops, TFLOP/s.

- **Bandwidth** counts the least traffic a one-pass kernel needs: forward reads every input and writes
  every output once; backward reads the inputs and the output gradients and writes the input gradients.
  The scans are memory-bound, so their target is that figure at >= 70% of peak HBM (H200: 4.8 TB/s).
- **FLOPs** of the chunked ops: ``chunk_gla_flops_per_token`` (the same count for the delta rules, a
  lower bound for them), backward = 2x forward. Their target is throughput >= 0.9x fla's.

    python bench/kernels.py                       # on a GPU, ~2-4 minutes
    python bench/kernels.py --quick               # T = 2048 and head dim 64 only
    python bench/kernels.py --cpu-smoke           # no GPU: tiny shapes under the Triton interpreter

Writes ``bench/results/kernels-<gpu>.json`` and ``.md`` (or ``--out-dir``). Prints a table, then as its
last line one JSON object with the headline figures (ratios first). Without a GPU (and without
``--cpu-smoke``) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

# peak HBM bandwidth, bytes/s, by a substring of torch.cuda.get_device_name() (first match wins)
PEAK_HBM = {"H200": 4.8e12, "H100 NVL": 3.9e12, "H100": 3.35e12, "A100": 2.0e12, "L40S": 0.864e12}
SCAN_HBM_TARGET = 0.70
FLA_RATIO_TARGET = 0.90
SCAN_OPS = ("linear_scan", "selective_scan")
SELECTIVE_SCAN_STATE = 16  # Mamba's d_state


@dataclass(frozen=True)
class Case:
    """One op at one shape: ``make(device, dtype) -> inputs`` (leaves that need gradients)."""

    op: str
    variant: str
    seq_len: int
    head_dim: int
    make: Callable[[Any, Any], dict[str, Any]]
    flops_per_token_fwd: float | None  # None: not a FLOP-bound op


def _cases(batch: int, heads: int, lengths: list[int], head_dims: list[int]) -> list[Case]:
    import torch
    import torch.nn.functional as F

    from kernels.gla import chunk_gla_flops_per_token

    def leaf(x):
        return x.detach().requires_grad_(True)

    def qkv(B, T, H, D, device, dtype, names=("q_BTHK", "k_BTHK", "v_BTHV")):
        q = torch.randn(B, T, H, D, device=device) * D**-0.5
        k = F.normalize(torch.randn(B, T, H, D, device=device), dim=-1)
        v = torch.randn(B, T, H, D, device=device)
        return {n: leaf(x.to(dtype)) for n, x in zip(names, (q, k, v), strict=True)}

    cases: list[Case] = []
    for T in lengths:
        for D in head_dims:
            B, H = batch, heads
            gla_flops = float(chunk_gla_flops_per_token(D, D, chunk_size=64)) * H

            def gla_head(device, dtype, B=B, T=T, H=H, D=D):
                g = -F.softplus(torch.randn(B, T, H, device=device) - 3.0) * 4.0
                return {**qkv(B, T, H, D, device, dtype), "g": leaf(g)}

            def gla_channel(device, dtype, B=B, T=T, H=H, D=D):
                g = F.logsigmoid(3.0 * torch.randn(B, T, H, D, device=device) + 1.0) / 16
                return {**qkv(B, T, H, D, device, dtype), "g": leaf(g)}

            def gated_delta(device, dtype, B=B, T=T, H=H, D=D):
                return {
                    **qkv(B, T, H, D, device, dtype),
                    "g_BTH": leaf(F.logsigmoid(1.5 * torch.randn(B, T, H, device=device) + 2.0)),
                    "beta_BTH": leaf(torch.sigmoid(torch.randn(B, T, H, device=device)).to(dtype)),
                }

            def generalized_delta(device, dtype, B=B, T=T, H=H, D=D):
                kk = F.normalize(torch.randn(B, T, H, D, device=device), dim=-1)
                iclr = torch.sigmoid(torch.randn(B, T, H, D, device=device))
                made = qkv(B, T, H, D, device, dtype, names=("r_BTHK", "k_BTHK", "v_BTHV"))
                return {
                    "r_BTHK": made["r_BTHK"],
                    "w_BTHK": leaf(-0.606531 * torch.sigmoid(2.0 * torch.randn(B, T, H, D, device=device))),
                    "k_BTHK": made["k_BTHK"],
                    "v_BTHV": made["v_BTHV"],
                    "a_BTHK": leaf((-kk).to(dtype)),
                    "b_BTHK": leaf((kk * iclr).to(dtype)),
                }

            def scan(device, dtype, B=B, T=T, N=H * D):
                log_a = -(torch.rand(B, T, N, device=device) ** 2)
                return {"log_a": leaf(log_a), "b_BTN": leaf(torch.randn(B, T, N, device=device).to(dtype))}

            def selective(device, dtype, B=B, T=T, E=H * D, N=SELECTIVE_SCAN_STATE):
                A = -torch.arange(1, N + 1, device=device, dtype=torch.float32).repeat(E, 1)
                return {
                    "x_BTE": leaf(torch.randn(B, T, E, device=device).to(dtype)),
                    "dt_BTE": leaf(F.softplus(torch.randn(B, T, E, device=device) - 4.0)),
                    "A_EN": leaf(A),
                    "B_BTN": leaf(torch.randn(B, T, N, device=device).to(dtype)),
                    "C_BTN": leaf(torch.randn(B, T, N, device=device).to(dtype)),
                    "D_E": leaf(torch.ones(E, device=device)),
                }

            cases += [
                Case("chunk_gla", "head decay", T, D, gla_head, gla_flops),
                Case("chunk_gla", "channel decay", T, D, gla_channel, gla_flops),
                Case("chunk_gated_delta_rule", "", T, D, gated_delta, gla_flops),
                Case("chunk_generalized_delta_rule", "", T, D, generalized_delta, gla_flops),
                Case("linear_scan", f"N={H * D}", T, D, scan, None),
                Case("selective_scan", f"E={H * D} N={SELECTIVE_SCAN_STATE}", T, D, selective, None),
            ]
    return cases


def _tensors(value: Any) -> list:
    import torch

    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in _tensors(item)]


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _timed(fn: Callable[[], Any], repeats: int, device) -> float:
    """Median seconds of ``fn`` (after one warm-up call, which also compiles the Triton kernels)."""
    import torch

    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def _measure(fn, inputs: dict[str, Any], repeats: int, device) -> dict[str, float]:
    """Forward and forward+backward seconds, and the one-pass byte counts of both."""
    import torch

    leaves = [v for v in inputs.values() if isinstance(v, torch.Tensor) and v.requires_grad]
    with torch.no_grad():
        produced = _tensors(fn(**inputs))
    out_grads = [torch.randn_like(t) for t in produced]

    def forward():
        with torch.no_grad():
            fn(**inputs)

    def forward_backward():
        pairs = [(t, g) for t, g in zip(_tensors(fn(**inputs)), out_grads, strict=True) if t.requires_grad]
        torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        for leaf in leaves:
            leaf.grad = None

    in_bytes, out_bytes = (
        _nbytes(v for v in inputs.values() if isinstance(v, torch.Tensor)),
        _nbytes(produced),
    )
    fwd_bytes = in_bytes + out_bytes
    return {
        "fwd_s": _timed(forward, repeats, device),
        "fwd_bwd_s": _timed(forward_backward, repeats, device),
        "fwd_bytes": fwd_bytes,
        # backward: read inputs and output gradients, write input gradients (same sizes as the inputs)
        "fwd_bwd_bytes": fwd_bytes + in_bytes + out_bytes + _nbytes(leaves),
    }


def _backend_fn(op: str, backend: str, device) -> tuple[Callable | None, str | None]:
    from kernels import dispatch

    previous = os.environ.get(dispatch.ENV_VAR)
    os.environ[dispatch.ENV_VAR] = backend
    try:
        return dispatch.get(op, device), None
    except dispatch.BackendUnavailable as error:
        return None, str(error)
    finally:
        if previous is None:
            os.environ.pop(dispatch.ENV_VAR, None)
        else:
            os.environ[dispatch.ENV_VAR] = previous


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def _peak_hbm(gpu_name: str, override: float | None) -> float | None:
    if override:
        return override * 1e9
    for key, value in PEAK_HBM.items():
        if key.lower() in gpu_name.lower():
            return value
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu-interpreter"
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    peak = _peak_hbm(gpu_name, args.peak_gbps) if device.type == "cuda" else None
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    started = time.monotonic()
    for case in _cases(args.batch, args.heads, args.lengths, args.head_dims):
        if args.ops and case.op not in args.ops:
            continue
        if args.budget_s and time.monotonic() - started > args.budget_s:  # a wall-clock cap for scripted runs
            skipped[f"{case.op} {case.variant} T={case.seq_len} D={case.head_dim}"] = "over --budget-s"
            continue
        torch.manual_seed(0)
        inputs = case.make(device, dtype)
        tokens = args.batch * case.seq_len
        for backend in args.backends:
            fn, why = _backend_fn(case.op, backend, device)
            if fn is None:
                skipped[f"{case.op}/{backend}"] = why
                continue
            row: dict[str, Any] = {
                "op": case.op, "variant": case.variant, "seq_len": case.seq_len, "head_dim": case.head_dim,
                "backend": backend,
            }  # fmt: skip
            try:
                measured = _measure(fn, inputs, args.repeats, device)
            except Exception as error:  # one failing kernel must not hide the others' numbers
                row["error"] = f"{type(error).__name__}: {error}"[:500]
                rows.append(row)
                print(
                    f"  {case.op} {case.variant} T={case.seq_len} D={case.head_dim} {backend}: {row['error']}"
                )
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            row.update(measured)
            row["tokens_per_s"] = tokens / measured["fwd_bwd_s"]
            row["fwd_gbps"] = measured["fwd_bytes"] / measured["fwd_s"] / 1e9
            row["fwd_bwd_gbps"] = measured["fwd_bwd_bytes"] / measured["fwd_bwd_s"] / 1e9
            if peak:
                row["fwd_hbm_fraction"] = row["fwd_gbps"] * 1e9 / peak
                row["fwd_bwd_hbm_fraction"] = row["fwd_bwd_gbps"] * 1e9 / peak
            if case.flops_per_token_fwd is not None:
                flops = case.flops_per_token_fwd * tokens
                row["fwd_tflops"] = flops / measured["fwd_s"] / 1e12
                row["fwd_bwd_tflops"] = 3 * flops / measured["fwd_bwd_s"] / 1e12
            rows.append(row)
            print(
                f"  {case.op:<29} {case.variant:<16} T={case.seq_len:<5} D={case.head_dim:<4} {backend:<6} "
                f"fwd {measured['fwd_s'] * 1e3:8.2f} ms  fwd+bwd {measured['fwd_bwd_s'] * 1e3:8.2f} ms",
                file=sys.stderr,
            )
        del inputs
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "gpu": gpu_name,
        "peak_hbm_bytes_per_s": peak,
        "dtype": args.dtype,
        "rows": rows,
        "skipped": skipped,
    }


def _key(row: dict[str, Any]) -> tuple:
    return (row["op"], row["variant"], row["seq_len"], row["head_dim"])


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """Ratios first: the worst scan's fraction of peak HBM, the worst chunked op's throughput against
    fla's, and the geometric-mean speedup of Triton over the PyTorch forms."""
    ok = [r for r in result["rows"] if "error" not in r]
    by = {(_key(r), r["backend"]): r for r in ok}
    scan_fractions = [r["fwd_bwd_hbm_fraction"] for r in ok if r["op"] in SCAN_OPS and r["backend"] == "triton"
                      and "fwd_bwd_hbm_fraction" in r]  # fmt: skip
    scan_fwd_fractions = [r["fwd_hbm_fraction"] for r in ok if r["op"] in SCAN_OPS and r["backend"] == "triton"
                          and "fwd_hbm_fraction" in r]  # fmt: skip
    vs_fla, vs_torch = [], []
    for (key, backend), row in by.items():
        if backend != "triton":
            continue
        if (key, "fla") in by:
            vs_fla.append(by[(key, "fla")]["fwd_bwd_s"] / row["fwd_bwd_s"])
        if (key, "torch") in by:
            vs_torch.append(by[(key, "torch")]["fwd_bwd_s"] / row["fwd_bwd_s"])

    def rounded(value):
        return None if value is None else round(value, 3)

    return {
        "scan_hbm_fraction_min": rounded(min(scan_fractions, default=None)),
        "scan_hbm_fraction_fwd_min": rounded(min(scan_fwd_fractions, default=None)),
        "scan_hbm_target": SCAN_HBM_TARGET,
        "chunked_vs_fla_min": rounded(min(vs_fla, default=None)),
        "chunked_vs_fla_target": FLA_RATIO_TARGET,
        "triton_vs_torch_speedup_geomean": rounded(
            math.exp(statistics.fmean(math.log(x) for x in vs_torch)) if vs_torch else None
        ),
        "gpu": result["gpu"],
        "rows": len(ok),
        "errors": len(result["rows"]) - len(ok),
    }


def markdown(result: dict[str, Any], summary: dict[str, Any]) -> str:
    lines = [
        f"# Kernel benchmark: {result['gpu']} ({result['dtype']} activations)",
        "",
        "| op | variant | T | D | backend | fwd ms | fwd+bwd ms | tokens/s | fwd+bwd GB/s | % peak HBM | TFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['variant']} | {r['seq_len']} | {r['head_dim']} | {r['backend']} | "
                         f"error: {r['error'][:80]} | | | | | |")  # fmt: skip
            continue
        fraction = f"{100 * r['fwd_bwd_hbm_fraction']:.0f}%" if "fwd_bwd_hbm_fraction" in r else "-"
        tflops = f"{r['fwd_bwd_tflops']:.1f}" if "fwd_bwd_tflops" in r else "-"
        lines.append(
            f"| {r['op']} | {r['variant']} | {r['seq_len']} | {r['head_dim']} | {r['backend']} | "
            f"{r['fwd_s'] * 1e3:.2f} | {r['fwd_bwd_s'] * 1e3:.2f} | {r['tokens_per_s']:.3g} | "
            f"{r['fwd_bwd_gbps']:.0f} | {fraction} | {tflops} |"
        )
    lines += ["", "Headline (ratios; targets: scans >= 0.70 of peak HBM, chunked ops >= 0.9x fla):", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    if result["skipped"]:
        lines += ["", "Backends not run:", ""] + [f"- {k}: {v}" for k, v in sorted(result["skipped"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument(
        "--backends", nargs="+", default=["triton", "torch", "fla"], choices=["triton", "torch", "fla"]
    )
    parser.add_argument("--ops", nargs="+", default=None, help="only these op names (default: all five)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-gbps", type=float, default=None, help="peak HBM GB/s (default: by GPU name)")
    parser.add_argument("--quick", action="store_true", help="T = 2048 and head dim 64 only")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="start no new case after this many seconds"
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="no GPU: tiny shapes, Triton interpreter")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    for name in ("batch", "heads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    if args.cpu_smoke:
        # before triton is imported (the interpreter is chosen then); fp32: the interpreter mishandles bf16
        os.environ["TRITON_INTERPRET"] = "1"
        args.batch, args.heads, args.lengths, args.head_dims = 1, 1, [9], [16]
        args.dtype, args.repeats = "fp32", 1
    else:
        import torch

        if not torch.cuda.is_available():
            print("no GPU: nothing to benchmark (CUDA is not available); --cpu-smoke runs tiny shapes under "
                  "the Triton interpreter to check the script", file=sys.stderr)  # fmt: skip
            print(json.dumps({"gpu": None, "skipped": "no GPU"}))
            return 0
    if args.quick:
        args.lengths, args.head_dims = args.lengths[:1], args.head_dims[:1]

    result = run(args)
    summary = headline(result)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"kernels-{_slug(result['gpu'])}"
    stem.with_suffix(".json").write_text(json.dumps({"summary": summary, **result}, indent=2) + "\n")
    table = markdown(result, summary)
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(json.dumps({**summary, "results": str(stem.with_suffix(".json"))}))
    return 1 if summary["rows"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
