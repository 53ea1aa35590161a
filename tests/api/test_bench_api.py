"""bench/api.py with tiny settings: a real `ceiling serve`, 2 clients for 2 s; its last line is the JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_bench_api_prints_latency_and_throughput_as_its_last_line():
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "api.py"),
            "--clients",
            "2",
            "--seconds",
            "2",
            "--n-boot",
            "20",
            "--floor-seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *table, last = done.stdout.strip().splitlines()
    document = json.loads(last)
    assert {"p99_ms", "p50_ms", "throughput_rps", "clients", "seconds", "target_p99_ms"} <= document.keys()
    assert document["clients"] == 2 and document["seconds"] == 2 and document["target_p99_ms"] == 100
    assert document["requests"] > 0 and document["errors"] == 0, document
    assert 0 < document["p50_ms"] <= document["p99_ms"]
    assert document["floor_throughput_rps"] > 0 and document["throughput_ratio_vs_floor"] > 0
    assert document["p99_ratio_vs_floor_p99"] > 0 and len(document["load_average"]) == 3
    assert document["throughput_rps"] == round(document["requests"] / 2, 1)
    assert any("p99 ms" in line for line in table)  # the human table comes first
