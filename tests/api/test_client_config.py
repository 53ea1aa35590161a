"""The client's configuration and error mapping: where the server and the token come from, the 0600 rule
for the token file, and each HTTP answer's exit code and message (never holding the token)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from orchestrator.client import ClientError, ServerClient, load_token, normalise_server, token_path
from orchestrator.client.server_client import describe_detail, error_for, field_path, query_params

TOKEN = "ceil_s3cret-T0KEN-do-not-print"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CEILING_TOKEN", raising=False)
    return tmp_path / "config"


def _write_token(mode: int) -> Path:
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    return path


def test_token_file_under_xdg_config_home_must_be_private(config_home: Path):
    assert token_path() == config_home / "ceiling" / "token"
    with pytest.raises(ClientError, match="CEILING_TOKEN") as missing:
        load_token()
    assert missing.value.exit_code == 2 and "ceiling token create" in str(missing.value)
    path = _write_token(0o644)
    with pytest.raises(ClientError, match=f"chmod 600 {path}") as loose:
        load_token()
    assert loose.value.exit_code == 2 and "0644" in str(loose.value) and TOKEN not in str(loose.value)
    path.chmod(0o600)
    assert load_token() == TOKEN


def test_token_from_the_environment_wins_and_home_is_the_default(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
):
    _write_token(0o600)
    monkeypatch.setenv("CEILING_TOKEN", "from-env")
    assert load_token() == "from-env"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert token_path() == Path.home() / ".config" / "ceiling" / "token"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://host:8000/", "http://host:8000"),
        ("https://ceiling.example.org/v1/", "https://ceiling.example.org"),
        ("http://host:8000/ceiling", "http://host:8000/ceiling"),  # behind a reverse proxy's prefix
    ],
)
def test_server_addresses_normalise(given: str, url: str):
    assert normalise_server(given) == url


@pytest.mark.parametrize("given", ["", "ftp://host", "http://alice:pw@host:8000"])
def test_bad_server_addresses_are_bad_input(given: str):
    with pytest.raises(ClientError) as error:
        normalise_server(given)
    assert error.value.exit_code == 2 and "pw" not in str(error.value)


def test_query_parameters_are_the_options_in_snake_case():
    assert query_params({"n_boot": 40, "backtest": True, "arch": None, "evals": False}) == {
        "n_boot": "40",
        "backtest": "true",
        "evals": "false",
    }


def test_fastapi_error_locations_read_as_the_cli_names_fields():
    assert field_path(["body", "architectures", 2]) == "architectures[2]"
    assert field_path(["body", "training", "lr"]) == "training.lr"
    assert field_path(["query", "n_boot"]) == "--n-boot"
    detail = [{"loc": ["body", "architectures", 2], "msg": "unknown architecture 'mamab'; known: gla, ..."}]
    assert describe_detail(detail) == "architectures[2]: unknown architecture 'mamab'; known: gla, ..."
    said = [{"loc": ["query", "n_boot"], "msg": "--n-boot: needs at least 2"}]
    assert describe_detail(said) == "--n-boot: needs at least 2"  # the path is not said twice


@pytest.mark.parametrize(
    ("status", "exit_code", "words"),
    [
        (401, 2, "ceiling token create"),
        (403, 2, "ask an admin"),
        (404, 2, "sweep 'nope' is not in the store"),
        (413, 2, "1 MiB"),
        (422, 2, "sweep 'nope' is not in the store"),
        (500, 1, "http://host:8000"),
        (503, 1, "retry"),
    ],
)
def test_each_answer_maps_to_the_cli_exit_code(status: int, exit_code: int, words: str):
    error = error_for(status, "sweep 'nope' is not in the store", "http://host:8000", "GET /v1/sweeps/nope")
    assert error.exit_code == exit_code and words in str(error)


def test_a_refused_connection_exits_1_naming_the_server(config_home: Path, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CEILING_TOKEN", TOKEN)
    with ServerClient(f"127.0.0.1:{port}") as client, pytest.raises(ClientError) as error:
        client.get_json("/sweeps")
    assert error.value.exit_code == 1
    assert f"http://127.0.0.1:{port}" in str(error.value) and "CEILING_SERVER" in str(error.value)
    assert TOKEN not in str(error.value) and TOKEN not in repr(error.value.__cause__)
    assert os.environ["CEILING_TOKEN"] == TOKEN  # the environment is read, never rewritten
