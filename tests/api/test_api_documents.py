"""The API's bodies are the CLI's `--json` documents, byte for byte, on a real finished sweep (the
session's examples/smoke.yaml run), and its CSV and report answers are the CLI's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.api.server import Server, make_token

pytestmark = pytest.mark.slow  # the shared smoke sweep (Ray, DeepSpeed) unless another test ran it


@pytest.fixture(scope="module")
def smoke_server(smoke_run):
    workdir, _ = smoke_run
    db_url = f"sqlite:///{Path(workdir) / 'ceiling.db'}"
    token = make_token(db_url, "reader")
    server = Server(Path(workdir), db_url).start()
    try:
        yield server, token, workdir
    finally:
        server.stop()


def _cli(workdir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "path, command",
    [
        ("/v1/sweeps/smoke/runs", ("runs", "smoke", "--json")),
        ("/v1/sweeps/smoke/runs?format=csv", ("runs", "smoke", "--csv")),
        ("/v1/sweeps/smoke/runs?format=csv&law_points=true", ("runs", "smoke", "--csv", "--law-points")),
        (
            "/v1/sweeps/smoke/laws?n_boot=40&form=power_c",
            ("laws", "smoke", "--n-boot", "40", "--form", "power_c", "--json"),
        ),
        (
            "/v1/sweeps/smoke/predict?arch=transformer&compute=1e15&n_boot=40&form=power_c",
            (
                "predict",
                "--sweep",
                "smoke",
                "--arch",
                "transformer",
                "--compute",
                "1e15",
                "--n-boot",
                "40",
                "--form",
                "power_c",
                "--json",
            ),
        ),
    ],
    ids=["runs-json", "runs-csv", "law-points", "laws", "predict"],
)
def test_bodies_are_the_cli_documents(smoke_server, path: str, command: tuple[str, ...]):
    server, token, workdir = smoke_server
    answer = server.request("GET", path, token)
    assert answer.status_code == 200, answer.text
    # csv writes \r\n line ends; CliRunner reads the command's stdout with universal newlines
    assert answer.text.replace("\r\n", "\n") == _cli(workdir, *command)


def test_status_and_report(smoke_server):
    server, token, workdir = smoke_server
    status = server.request("GET", "/v1/sweeps/smoke", token).json()
    assert status["sweeps"][0]["status"] == {"done": 4} and status["queue"] is None  # run by the CLI
    compare = server.request("GET", "/v1/sweeps/smoke/compare?n_boot=40", token)
    assert (
        compare.status_code == 422
        and "a comparison needs a second architecture" in compare.json()["detail"][0]["msg"]
    )
    markdown = server.request("GET", "/v1/sweeps/smoke/report?format=md&n_boot=20", token)
    assert markdown.status_code == 200 and markdown.text.startswith("# smoke")
    html = server.request("GET", "/v1/sweeps/smoke/report?n_boot=20", token)
    assert html.headers["content-type"].startswith("text/html") and "<html" in html.text[:500].lower()
