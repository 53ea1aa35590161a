"""`--server URL`: the commands' documents fetched from a `ceiling serve` instead of computed from a store.

Each ``fetch_*`` returns the same ``--json`` document the local command builds (the HTTP API's bodies are
exactly those documents), so the command prints it with the same renderer. Query parameters are the
commands' long option names in snake_case. The service's own facts about a sweep (its place in the queue,
its owner) are kept under ``queue`` in ``--json`` and said on stderr, so stdout matches the local command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer

from orchestrator.cli.common import BadInput, err_console

T = TypeVar("T")

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="CEILING_SERVER",
        show_envvar=False,
        help="ask this `ceiling serve` (e.g. http://host:8000) instead of a local store (env CEILING_SERVER; "
        "token from CEILING_TOKEN or ~/.config/ceiling/token, mode 0600)",
    ),
]


def check_store_options(server: str | None, workdir: Path | None, db: str | None) -> None:
    """A server reads its own store: --workdir / --db with --server is a contradiction, not a choice."""
    if server and (workdir is not None or db is not None):
        given = " and ".join(
            name for name, value in (("--workdir", workdir), ("--db", db)) if value is not None
        )
        raise BadInput(
            f"{given} and --server (or CEILING_SERVER) both say where to read from: the server reads its own "
            f"store; drop {given}, or drop --server / unset CEILING_SERVER to read a local store"
        )


@contextmanager
def server_errors() -> Iterator[None]:
    """Print a ClientError as the CLI prints its errors and exit with its code (2: fix something; 1: the
    server or the network failed)."""
    from orchestrator.client import ClientError

    try:
        yield
    except ClientError as exc:
        prefix = "error" if exc.exit_code == 2 else "failed"
        err_console.print(f"{prefix}: {exc}", style="red", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def call(server: str, request: Callable[[Any], T]) -> T:
    """Run ``request(client)`` against the server, with its errors mapped to exit codes."""
    from orchestrator.client import ServerClient

    with server_errors(), ServerClient(server) as client:
        return request(client)


def sweep_path(sweep: str) -> str:
    return f"/sweeps/{quote(sweep, safe='')}"


def say_queue(document: dict[str, Any]) -> None:
    """The service's own line about a sweep (stderr): where it is in the queue and whose it is."""
    queue = document.get("queue")
    if not queue:
        return
    times = ", ".join(
        f"{what} {queue[key]}"
        for what, key in (
            ("submitted", "submitted_at"),
            ("started", "started_at"),
            ("finished", "finished_at"),
        )
        if queue.get(key)
    )
    err_console.print(
        f"queue: {queue.get('status')} (owner {queue.get('owner')}{', ' + times if times else ''})",
        style="dim",
        highlight=False,
    )


# -- one fetch per command ---------------------------------------------------------------------------------


def fetch_status(server: str, sweep: str | None) -> dict[str, Any]:
    """`ceiling status [SWEEP] --json` from the server (plus ``queue``: the service's facts)."""
    if sweep is not None:
        return call(server, lambda c: c.get_json(sweep_path(sweep)))
    listing = call(server, lambda c: c.get_json("/sweeps"))
    return {
        "sweeps": [
            {
                "name": item["sweep"],
                "status": item.get("counts", {}),
                "queue": {k: item.get(k) for k in ("status", "owner", "submitted_at") if k in item},
            }
            for item in listing["sweeps"]
        ]
    }


def fetch_runs(server: str, sweep: str | None, *, evals: bool, csv: bool, law_points: bool) -> Any:
    """`ceiling runs SWEEP --json | --csv [--law-points]` from the server: a document, or CSV text."""
    if sweep is None:
        raise BadInput(
            "--server: name a sweep (`ceiling runs SWEEP --server URL`); `ceiling status` lists them"
        )
    params = {"format": "csv" if csv else "json", "law_points": law_points or None, "evals": evals or None}
    path = sweep_path(sweep) + "/runs"
    if csv:
        return call(server, lambda c: c.get_text(path, params))
    return call(server, lambda c: c.get_json(path, params))


def fetch_law_document(
    server: str, sweep: str | None, endpoint: str, params: dict[str, Any]
) -> dict[str, Any]:
    """`ceiling laws | predict | compare ... --json` from the server (``endpoint``: laws, predict, compare)."""
    if sweep is None:
        command = "predict ... --sweep SWEEP" if endpoint == "predict" else f"{endpoint} SWEEP"
        raise BadInput(
            f"--server: name a sweep (`ceiling {command} --server URL`); `ceiling status` lists them"
        )
    return call(server, lambda c: c.get_json(f"{sweep_path(sweep)}/{endpoint}", params))


def fetch_report(server: str, sweep: str, params: dict[str, Any], markdown: bool) -> bytes:
    """The report `ceiling report SWEEP` writes (HTML, or Markdown for an ``.md`` file), from the server."""
    query = params | {"format": "md" if markdown else "html"}
    return call(server, lambda c: c.get_bytes(sweep_path(sweep) + "/report", query))
