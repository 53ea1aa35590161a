"""The store (a private PostgreSQL) stopped and started under a running `ceiling serve`: requests fail
cleanly while it is down (503 with Retry-After, no traceback, at once rather than after the CLI's long
retries), health still answers, readiness says what is down, and after the restart everything works
and nothing submitted before is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.api.private_postgres import PrivatePostgres, why_unavailable
from tests.api.server import Server, make_token


@pytest.fixture
def private_postgres():
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = PrivatePostgres().init()
    try:
        yield server
    finally:
        server.destroy()


def _spec(examples: Path, name: str) -> dict:
    return yaml.safe_load((examples / "smoke.yaml").read_text()) | {"name": name}


def test_requests_fail_cleanly_while_the_store_is_down_and_nothing_is_lost(
    private_postgres: PrivatePostgres, tmp_path: Path, examples: Path
):
    alice = make_token(private_postgres.url, "alice")
    server = Server(tmp_path, private_postgres.url).start()
    try:
        assert server.request("POST", "/v1/sweeps", alice, json=_spec(examples, "before")).status_code == 201

        private_postgres.stop()
        answers = []
        for method, path, body in (
            ("GET", "/v1/sweeps", None),
            ("GET", "/v1/sweeps/before", None),
            ("GET", "/v1/sweeps/before/runs?format=csv", None),
            ("GET", "/metrics", None),
            ("POST", "/v1/sweeps", _spec(examples, "while-down")),
            ("POST", "/v1/sweeps/before/cancel", None),
        ):
            started = time.monotonic()
            answer = server.request(method, path, alice, json=body)
            answers.append((path, answer.status_code, time.monotonic() - started))
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert answer.headers["Retry-After"] and "retry" in answer.json()["detail"]
            assert "Traceback" not in answer.text and "psycopg" not in answer.text
        assert all(seconds < 10 for _, _, seconds in answers), answers
        assert server.request("GET", "/v1/health").status_code == 200
        ready = server.request("GET", "/v1/ready")
        assert ready.status_code == 503 and ready.json()["store"] == "unavailable"

        private_postgres.start()
        assert server.request("GET", "/v1/ready").status_code == 200
        listed = server.request("GET", "/v1/sweeps", alice)
        assert listed.status_code == 200
        assert [s["sweep"] for s in listed.json()["sweeps"]] == ["before"]  # kept; the refused one not stored
        assert server.request("POST", "/v1/sweeps", alice, json=_spec(examples, "after")).status_code == 201
        assert server.request("GET", "/v1/sweeps/before", alice).json()["queue"]["status"] == "queued"
        assert "Traceback" not in server.log and alice not in server.log
    finally:
        server.stop()
