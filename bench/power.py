"""Benchmark: the design-power analysis of the 12-architecture CPU ladder, as `ceiling plan` runs it.

Plans examples/cpu-ladder.yaml (every registered architecture x 5 sizes x 4 budgets), then times
`orchestrator.study_power.analyse`: simulated studies per distinct design, each fitted like
`ceiling laws` (chinchilla, whole-run bootstrap, health). The target is well under 60 s for the
whole plan on this 2-core machine; architectures whose designs agree to 5% share one simulation.

Usage: python bench/power.py [--spec examples/cpu-ladder.yaml] [--simulations 40] [--repeats 1]
Prints a table, then one JSON line with the headline figures (ratio to the 60 s target first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "cpu-ladder.yaml")
    parser.add_argument("--simulations", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from orchestrator.kinds import plan_trials
    from orchestrator.scheduling.runner import prepare_spec_data
    from orchestrator.spec import load_spec
    from orchestrator.study_power import PowerSettings, analyse

    spec = load_spec(args.spec)
    data = prepare_spec_data(spec)
    trials = plan_trials(spec, data.vocab_size)
    times, document = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        document = analyse(spec, trials, PowerSettings(n_sim=args.simulations))
        times.append(time.perf_counter() - start)
    assert document is not None
    best = min(times)
    archs = document["architectures"]
    distinct = len({json.dumps(r, sort_keys=True) for r in archs.values()})
    print(f"{'architecture':<16}{'healthy':>9}{'weak':>7}{'degen.':>8}{'alpha CI span':>15}{'backtest':>10}")
    for label, r in archs.items():
        print(
            f"{label:<16}{r['shares']['healthy']:>9.0%}{r['shares']['weak']:>7.0%}"
            f"{r['shares']['degenerate'] + r['shares']['failed']:>8.0%}"
            f"{r['exponent_ci95']['alpha']['median_span']:>14.2f}x"
            f"{(r['backtest_largest_size_error'] or float('nan')):>10.2%}"
        )
    print(
        f"{len(archs)} architectures, {distinct} distinct design(s), {args.simulations} studies each: "
        f"{best:.1f} s (target < {TARGET_S:.0f} s; best of {args.repeats})"
    )
    first = next(iter(archs.values()))
    print(
        json.dumps(
            {
                "seconds_over_target": round(best / TARGET_S, 3),
                "seconds": round(best, 2),
                "architectures": len(archs),
                "distinct_designs": distinct,
                "simulations_per_design": args.simulations,
                "healthy_share": first["shares"]["healthy"],
                "likely_degenerate": document["likely_degenerate"],
            }
        )
    )


if __name__ == "__main__":
    main()
