"""`ceiling submit SPEC --server URL`: hand a sweep to a team's `ceiling serve`, which queues and runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import BadInput, guarded, out_console, print_json
from orchestrator.cli.remote import ServerOption, call
from orchestrator.cli.sweeps import JsonOption

MAX_SPEC_BYTES = 1 << 20  # the server refuses bigger bodies (413); say so before sending


def submit(
    spec_file: Annotated[Path, typer.Argument(help="sweep YAML (or JSON), e.g. examples/quickstart.yaml")],
    server: ServerOption = None,
    json_out: JsonOption = False,
) -> None:
    """Submit a sweep to a ceiling server: it validates the spec (the same checks as `ceiling run`, exit 2
    naming the field), queues it and runs it on its cluster. Submitting the same spec again returns the
    same sweep. Follow it with `ceiling status NAME --server URL`.

    Examples:
      ceiling submit examples/quickstart.yaml --server http://ceiling.internal:8000
      CEILING_SERVER=http://127.0.0.1:8000 ceiling submit sweep.yaml --json
    """

    def body() -> None:
        if not server:
            raise BadInput(
                "--server: `ceiling submit` sends the sweep to a ceiling server; give --server URL or set "
                "CEILING_SERVER (token from CEILING_TOKEN or ~/.config/ceiling/token), or run it on this "
                f"machine with `ceiling run {spec_file}`"
            )
        path = spec_file.expanduser()
        if not path.is_file():
            raise BadInput(
                f"SPEC: {spec_file} is not a file; give a sweep YAML such as examples/quickstart.yaml"
            )
        content = path.read_bytes()
        if len(content) > MAX_SPEC_BYTES:
            raise BadInput(
                f"SPEC: {spec_file} is {len(content) / 2**20:.1f} MiB; the server takes specs up to 1 MiB"
            )
        content_type = "application/json" if path.suffix.lower() == ".json" else "application/yaml"
        document = call(
            server, lambda client: client.post_json("/sweeps", body=content, content_type=content_type)
        )
        if json_out:
            print_json(document)
            return
        out_console(False).print(submitted_line(document), highlight=False)
        from orchestrator.client import normalise_server

        out_console(False).print(
            f"follow it: ceiling status {document['sweep']} --server {normalise_server(server)}",
            highlight=False,
        )

    guarded(body)


def submitted_line(document: dict[str, Any]) -> str:
    """What the server did with the spec: queued it, or found it already submitted."""
    sweep, status, trials = document["sweep"], document.get("status"), document.get("trials")
    owner = document.get("owner")
    what = f"{trials} trial(s), {status}" + (f" (owner {owner})" if owner else "")
    if document.get("created", True):
        return f"submitted sweep {sweep}: {what}"
    return f"sweep {sweep} was already submitted with this spec: {what}"
