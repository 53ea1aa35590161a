"""bench/mixers.py end to end at toy settings (a subprocess: it sets torch's thread count): the tables, then
one JSON object as the last line with the headline ratios first, and ``--ops`` / ``--archs`` selecting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "mixers.py"


def test_selected_ops_and_architectures_end_with_one_json_line():
    args = ["--ops", "linear_scan", "--archs", "hawk", "--size", "50k", "--lengths", "16", "32"]
    args += ["--op-seq-len", "16", "--repeats", "1"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=True
    )
    headline = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(headline)[:2] == ["min_chunked_speedup", "min_chunked_speedup_op"]
    assert set(headline["per_op"]) == {"linear_scan"} and headline["per_op"]["linear_scan"]["speedup"] > 0
    assert set(headline["per_arch"]) == {"transformer", "hawk"}
    assert headline["max_cost_growth_arch"] == "hawk" and headline["per_arch"]["hawk"]["growth"] > 0
