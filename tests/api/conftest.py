"""Fixtures of the API tests: a `ceiling serve` subprocess with tokens for alice, bob and an admin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.server import Server, make_token


@dataclass
class Served:
    server: Server
    alice: str
    bob: str
    admin: str


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that queues but runs no sweep (--max-running-sweeps 0): the API alone, no Ray."""
    workdir = tmp_path_factory.mktemp("serve")
    db_url = f"sqlite:///{workdir / 'ceiling.db'}"
    tokens = {user: make_token(db_url, user) for user in ("alice", "bob")}
    admin = make_token(db_url, "root", admin=True)
    server = Server(workdir, db_url).start()
    try:
        yield Served(server, tokens["alice"], tokens["bob"], admin)
    finally:
        server.stop()


@pytest.fixture
def examples() -> Path:
    from tests.conftest import EXAMPLES

    return EXAMPLES
