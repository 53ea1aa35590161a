"""One tiny real sweep through `ceiling submit --server`: the server queues it, runs it on Ray, and the
finished sweep reads the same over the server as from the store itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.api.server import Server
from tests.sweep_runs import sweep as tiny_sweep

pytestmark = pytest.mark.slow
CEILING = str(Path(sys.executable).with_name("ceiling"))
FINISH_TIMEOUT_S = 300.0  # Ray start-up and one 16-step trial, on a busy 2-core machine


def test_a_submitted_sweep_runs_and_reads_the_same_over_the_server(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'ceiling.db'}"
    made = subprocess.run(
        [CEILING, "token", "create", "--user", "carol", "--db", db, "--json"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    server = Server(tmp_path, db, max_running_sweeps=1).start()
    env = {"CEILING_SERVER": server.url, "CEILING_TOKEN": token}
    try:
        spec_file = tmp_path / "client-run.yaml"
        spec_file.write_text(yaml.safe_dump(tiny_sweep("client-run")))
        submitted = CliRunner().invoke(app, ["submit", str(spec_file), "--json"], env=env)
        assert submitted.exit_code == 0, submitted.output
        assert json.loads(submitted.stdout)["created"] is True
        deadline, queue = time.monotonic() + FINISH_TIMEOUT_S, {}
        while time.monotonic() < deadline:
            status = CliRunner().invoke(app, ["status", "client-run", "--json"], env=env)
            assert status.exit_code == 0, status.output
            queue = json.loads(status.stdout)["queue"]
            if queue["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(1.0)
        assert queue["status"] == "done", f"{queue}\n{server.log[-3000:]}"
        assert queue["owner"] == "carol"
        for args in (["status", "client-run"], ["runs", "client-run"], ["runs", "client-run", "--csv"]):
            there = CliRunner().invoke(app, args, env=env)
            here = CliRunner().invoke(app, [*args, "--db", db], env={"CEILING_SERVER": None})
            assert there.exit_code == here.exit_code == 0, there.output
            assert there.stdout == here.stdout
        assert "client-run: 1 done" in CliRunner().invoke(app, ["status"], env=env).stdout
    finally:
        server.stop()
    assert token not in server.log
