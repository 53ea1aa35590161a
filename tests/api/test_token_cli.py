"""`ceiling token create | list | revoke` and `ceiling serve`'s refusal to bind beyond loopback with no
token in the store (CliRunner: no server starts)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app


def _ceiling(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_create_prints_the_token_once_and_the_store_keeps_only_its_hash(tmp_path: Path):
    created = _ceiling("token", "create", "--user", "alice", "--admin", "--workdir", str(tmp_path), "--json")
    assert created.exit_code == 0, created.output
    document = json.loads(created.stdout)
    token = document["token"]
    assert token.startswith("ceil_") and len(token) > 40
    assert document["user"] == "alice" and document["admin"] is True and document["revoked_at"] is None
    assert token.encode() not in (tmp_path / "ceiling.db").read_bytes()  # only its sha256

    plain = _ceiling("token", "create", "--user", "bob", "--workdir", str(tmp_path))
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("ceil_")
    listed = _ceiling("token", "list", "--workdir", str(tmp_path), "--json")
    tokens = json.loads(listed.stdout)["tokens"]
    assert [t["user"] for t in tokens] == ["alice", "bob"] and "token" not in tokens[0]
    assert token not in listed.output

    revoked = _ceiling("token", "revoke", document["id"], "--workdir", str(tmp_path))
    assert revoked.exit_code == 0 and f"revoked token {document['id']} of alice" in revoked.stdout
    assert _ceiling("token", "revoke", "--user", "bob", "--workdir", str(tmp_path)).exit_code == 0
    assert json.loads(_ceiling("token", "list", "--workdir", str(tmp_path), "--json").stdout)["tokens"] == []
    again = _ceiling("token", "revoke", document["id"], "--workdir", str(tmp_path))
    assert again.exit_code == 2 and "no live token" in again.output


def test_bad_token_input_is_exit_code_2(tmp_path: Path):
    bad_user = _ceiling("token", "create", "--user", "a b/c", "--workdir", str(tmp_path))
    assert bad_user.exit_code == 2 and "--user" in bad_user.output
    neither = _ceiling("token", "revoke", "--workdir", str(tmp_path))
    assert neither.exit_code == 2 and "TOKEN_ID or --user" in neither.output


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path):
    refused = _ceiling("serve", "--workdir", str(tmp_path), "--host", "0.0.0.0", "--port", "1")
    assert refused.exit_code == 2
    assert "ceiling token create --user NAME" in refused.output
