"""A real `ceiling serve` in a subprocess on a free 127.0.0.1 port, for the API tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

START_TIMEOUT_S = 90.0  # imports and the store's migrations; slow on 2 busy cores
TOKEN_CACHE_S = 1.0  # the tests' servers trust a validated token this long (the default is 5 s)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_token(db_url: str, user: str, *, admin: bool = False) -> str:
    from orchestrator.store import Store, api_tokens

    store = Store.open(db_url)
    try:
        return api_tokens.create(store, user, admin=admin)[1]
    finally:
        store.close()


@dataclass
class Server:
    """One `ceiling serve` process; ``log`` holds everything it wrote (stdout and stderr)."""

    workdir: Path
    db_url: str
    port: int = field(default_factory=free_port)
    max_running_sweeps: int = 0
    extra: tuple[str, ...] = ()
    token_cache_s: float = TOKEN_CACHE_S
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log_path = self.workdir / f"serve-{self.port}.log"
        command = [
            sys.executable,
            "-c",
            "from orchestrator.cli import main; main()",
            "serve",
            "--workdir",
            str(self.workdir),
            "--db",
            self.db_url,
            "--port",
            str(self.port),
            "--max-running-sweeps",
            str(self.max_running_sweeps),
            "--no-mlflow",
            "--token-cache-s",
            str(self.token_cache_s),
            *self.extra,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ.copy()
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ceiling serve exited with {self.process.returncode}:\n{self.log}")
            try:
                if requests.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ceiling serve did not answer in {START_TIMEOUT_S:.0f} s:\n{self.log}")

    def stop(self) -> None:
        """Ctrl-C: uvicorn shuts down and the queue runner stops its sweeps politely."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, self.url + path, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs
        )
