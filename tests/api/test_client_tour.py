"""The whole tour over `--server`, against a real `ceiling serve` (uvicorn on 127.0.0.1): every command
prints exactly what the local command prints on the same store, and the server's errors become the
CLI's exit codes and messages, without the token in them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench.api import SWEEP, fill_store
from orchestrator.cli import app
from tests.api.server import TOKEN_CACHE_S, Server
from tests.sweep_runs import sweep as tiny_sweep

CEILING = str(Path(sys.executable).with_name("ceiling"))
N_BOOT = ["--n-boot", "40"]  # enough resamples for intervals, quick to fit on 2 cores


@dataclass
class Tour:
    server: Server
    db: str
    token: str
    folder: Path


def ceiling_json(*args: str) -> dict:
    """A `ceiling ... --json` in its own process (as an admin would run it on the server)."""
    done = subprocess.run([CEILING, *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    """A store holding a finished synthetic ladder (law points only), a token made by `ceiling token create
    --json`, and `ceiling serve` over that store; it queues sweeps but runs none (no Ray needed)."""
    folder = tmp_path_factory.mktemp("tour")
    db = f"sqlite:///{folder / 'ceiling.db'}"
    fill_store(db)
    token = ceiling_json("token", "create", "--user", "alice", "--db", db)["token"]
    server = Server(folder, db).start()
    try:
        yield Tour(server, db, token, folder)
    finally:
        server.stop()


def remote(tour: Tour, *args: str, **env: str | None):
    environment = {"CEILING_SERVER": tour.server.url, "CEILING_TOKEN": tour.token} | env
    return CliRunner().invoke(app, list(args), env=environment)


def local(tour: Tour, *args: str):
    return CliRunner().invoke(app, [*args, "--db", tour.db], env={"CEILING_SERVER": None})


TOUR = [
    ["status"],
    ["status", SWEEP],
    ["runs", SWEEP],
    ["runs", SWEEP, "--json"],
    ["runs", SWEEP, "--json", "--evals"],
    ["runs", SWEEP, "--csv"],
    ["runs", SWEEP, "--csv", "--law-points"],
    ["laws", SWEEP, *N_BOOT],
    ["laws", SWEEP, "--arch", "gla", "--form", "power_c", "--json", *N_BOOT],
    ["predict", "--arch", "transformer", "--params", "1B", "--tokens", "20B", "--sweep", SWEEP, *N_BOOT],
    ["predict", "--arch", "gla", "--compute", "1e21", "--sweep", SWEEP, "--json", *N_BOOT],
    ["compare", SWEEP, "--at", "1e21", *N_BOOT],
    ["compare", SWEEP, "--json", *N_BOOT],
    # bad input: the server's 422/404 say what the local command says, exit 2
    ["laws", SWEEP, "--metric", "bogus"],
    ["predict", "--arch", "transformer", "--params", "1B", "--sweep", SWEEP],
    ["compare", SWEEP, "--baseline", "mamab"],
    ["laws", SWEEP, "--cost", "decode_ms_per_token_L8192", "--form", "power_c"],  # no efficiency measurements
]


@pytest.mark.parametrize("args", TOUR, ids=lambda args: " ".join(args[:4]))
def test_each_command_over_server_prints_what_the_local_command_prints(tour: Tour, args: list[str]):
    here, there = local(tour, *args), remote(tour, *args)
    assert there.exit_code == here.exit_code, there.output
    assert there.stdout == here.stdout
    if here.exit_code == 2:
        assert here.stderr.strip().splitlines()[0] in there.stderr  # the same message, naming the field
    assert tour.token not in there.output


def test_status_json_is_the_local_document_plus_the_queue(tour: Tour):
    here, there = local(tour, "status", SWEEP, "--json"), remote(tour, "status", SWEEP, "--json")
    assert here.exit_code == there.exit_code == 0, there.output
    document = json.loads(there.stdout)
    assert document.pop("queue") is None  # filled in by the store, not by the service's queue
    assert document == json.loads(here.stdout)


def test_report_over_server_writes_the_same_file(tour: Tour):
    args = ["report", SWEEP, "--at", "1e21", *N_BOOT]
    here = local(tour, *args, "--out", str(tour.folder / "local.md"))
    there = remote(tour, *args, "--out", str(tour.folder / "remote.md"))
    assert here.exit_code == there.exit_code == 0, there.output
    assert (tour.folder / "remote.md").read_text() == (tour.folder / "local.md").read_text()
    assert f"wrote {tour.folder / 'remote.md'}" in there.stderr
    html = remote(tour, *args, "--out", str(tour.folder / "remote.html"))
    assert html.exit_code == 0, html.output
    assert (tour.folder / "remote.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_the_server_comes_from_the_flag_and_the_token_from_a_private_file(tour: Tour, tmp_path: Path):
    token_file = tmp_path / "ceiling" / "token"
    token_file.parent.mkdir()
    token_file.write_text(tour.token + "\n")
    token_file.chmod(0o600)
    netrc = tmp_path / "netrc"  # a ~/.netrc entry for the host must not replace the bearer token
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    env = {
        "CEILING_SERVER": None,
        "CEILING_TOKEN": None,
        "XDG_CONFIG_HOME": str(tmp_path),
        "NETRC": str(netrc),
    }
    flagged = remote(tour, "status", "--server", tour.server.url, **env)
    assert flagged.exit_code == 0 and flagged.stdout == local(tour, "status").stdout
    token_file.chmod(0o644)
    loose = remote(tour, "status", "--server", tour.server.url, **env)
    assert loose.exit_code == 2 and f"chmod 600 {token_file}" in loose.stderr
    assert tour.token not in loose.output
    missing = remote(
        tour, "status", "--server", tour.server.url, **env | {"XDG_CONFIG_HOME": str(tmp_path / "x")}
    )
    assert (
        missing.exit_code == 2
        and "CEILING_TOKEN" in missing.stderr
        and "ceiling token create" in missing.stderr
    )


def test_wrong_and_revoked_tokens_and_a_dead_server_map_to_exit_codes(tour: Tour):
    wrong = remote(tour, "status", CEILING_TOKEN="ceil_not-a-token")
    assert (
        wrong.exit_code == 2
        and "refused the token" in wrong.stderr
        and "ceiling token create" in wrong.stderr
    )
    assert "ceil_not-a-token" not in wrong.output
    made = ceiling_json("token", "create", "--user", "bob", "--db", tour.db)
    assert remote(tour, "status", CEILING_TOKEN=made["token"]).exit_code == 0
    ceiling_json("token", "revoke", made["id"], "--db", tour.db)
    time.sleep(TOKEN_CACHE_S)  # the server trusts a validated token this long
    revoked = remote(tour, "status", CEILING_TOKEN=made["token"])
    assert revoked.exit_code == 2 and "refused the token" in revoked.stderr
    assert made["token"] not in revoked.output
    unknown = remote(tour, "laws", "nope")
    assert unknown.exit_code == 2 and "sweep 'nope' is not in the store" in unknown.stderr
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    refused = remote(tour, "laws", SWEEP, CEILING_SERVER=dead)
    assert refused.exit_code == 1 and dead in refused.stderr
    both = remote(tour, "status", "--db", tour.db)
    assert both.exit_code == 2 and "--db and --server" in both.stderr


def test_submit_queues_once_names_bad_fields_and_needs_a_server(tour: Tour, tmp_path: Path):
    spec = tiny_sweep("tour-submit")
    spec_file = tmp_path / "tour-submit.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    first = remote(tour, "submit", str(spec_file))
    assert first.exit_code == 0, first.output
    assert "submitted sweep tour-submit: 1 trial(s), queued (owner alice)" in first.stdout
    again = remote(tour, "submit", str(spec_file), "--json")
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert (
        document["sweep"] == "tour-submit" and document["created"] is False and document["owner"] == "alice"
    )
    # a queued sweep is planned and stored: status reads the same over the server and here, and every
    # sweep is listed in the same order (bench-laws was filled here, tour-submit came through the queue)
    assert remote(tour, "status", "tour-submit").stdout == local(tour, "status", "tour-submit").stdout
    listed = remote(tour, "status").stdout
    assert listed == local(tour, "status").stdout and listed.index(SWEEP) < listed.index("tour-submit")
    spec_file.write_text(
        yaml.safe_dump(spec | {"name": "tour-bad", "architectures": ["transformer", "mamab"]})
    )
    bad = remote(tour, "submit", str(spec_file))
    assert bad.exit_code == 2 and "architectures[1]" in bad.stderr and "mamab" in bad.stderr
    nowhere = CliRunner().invoke(app, ["submit", str(spec_file)], env={"CEILING_SERVER": None})
    assert nowhere.exit_code == 2 and f"ceiling run {spec_file}" in nowhere.stderr
