"""`ceiling dashboard`: serve the Streamlit app over the store (read-only; it never trains)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import BadInput, err_console, guarded, workdir_path
from orchestrator.cli.sweeps import DbOption, WorkdirOption

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the server will: a port in TIME_WAIT (a server just stopped) is free, a listening one is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def streamlit_command(address: str, port: int) -> list[str]:
    """``python -m streamlit``: this interpreter's streamlit, and a main module that multiprocessing's
    'spawn' (the laws bootstrap pool) can re-import without starting a second server."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",  # nothing leaves the machine
        "--server.fileWatcherType",
        "none",  # no reloads (and no inotify watches) for a read-only viewer
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button
    ]


def dashboard(
    db: DbOption = None,
    workdir: WorkdirOption = None,
    port: Annotated[int, typer.Option("--port", help="port to serve on", min=1, max=65535)] = 8501,
    address: Annotated[
        str,
        typer.Option(
            "--address", help="interface to bind; 127.0.0.1 keeps it on this machine (0.0.0.0: any)"
        ),
    ] = "127.0.0.1",
) -> None:
    """Open the dashboard: sweeps and trials, training curves, scaling laws, the ceiling test, recall.

    It reads the store (and refreshes while a sweep runs); it never trains.

    Examples:
      ceiling dashboard                               # the store under ./ceiling-runs
      ceiling dashboard --workdir runs --port 8600
      ceiling dashboard --db postgresql://me@db/ceiling
    """

    def body() -> None:
        from orchestrator.store import redact, resolve_url

        url = resolve_url(db, workdir_path(workdir))
        if not _port_free(address, port):
            raise BadInput(f"--port: {address}:{port} is in use; pass another, e.g. --port {port + 1}")
        # The URL travels in the environment, not argv, so a password never shows in `ps`.
        env = {**os.environ, "CEILING_DB": url}
        err_console.print(f"ceiling dashboard: http://{address}:{port}  (store {redact(url)}; Ctrl-C stops)")
        sys.stdout.flush()
        sys.stderr.flush()
        # Become the server (exec, not a child): Ctrl-C and kill reach it directly and leave no orphan.
        os.execve(sys.executable, streamlit_command(address, port), env)

    guarded(body)
