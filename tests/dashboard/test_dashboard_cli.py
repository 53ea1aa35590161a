"""`ceiling dashboard` arguments, and that the app starts without torch, ray or deepspeed."""

from __future__ import annotations

import socket
import subprocess
import sys

from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.cli.dashboard import streamlit_command
from tests.dashboard.conftest import APP


def test_a_busy_port_is_bad_input_naming_the_option(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["dashboard", "--workdir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert "--port" in result.output and "in use" in result.output


def test_the_server_binds_localhost_headless_without_telemetry():
    command = streamlit_command("127.0.0.1", 8600)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP)
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"


def test_the_app_imports_no_training_stack():
    """What `streamlit run dashboard/app.py` imports, in a fresh interpreter: no torch, ray or deepspeed."""
    code = (
        "import sys\n"
        "import dashboard.app\n"
        "for page in ('sweeps', 'curves', 'scaling_laws', 'ceiling_test', 'recall'):\n"
        "    __import__(f'dashboard.pages.{page}')\n"
        "heavy = [m for m in ('torch', 'ray', 'deepspeed', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
