"""`ceiling serve`: the HTTP API (orchestrator/api) and its sweep queue, on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated

import typer

from orchestrator.cli.common import BadInput, db_url, err_console, guarded, workdir_path
from orchestrator.cli.sweeps import AddressOption, DbOption, TrackingOption, WorkdirOption

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    workdir: WorkdirOption = None,
    db: DbOption = None,
    address: AddressOption = None,
    tracking_uri: TrackingOption = None,
    host: Annotated[
        str, typer.Option("--host", help="address to bind; anything but loopback needs a token in the store")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to bind")] = 8000,
    max_running_sweeps: Annotated[
        int,
        typer.Option(
            "--max-running-sweeps",
            min=0,
            help="sweeps run at once, picked fairly across users (0: accept and queue, run none)",
        ),
    ] = 1,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="sweeps do not log to MLflow")] = False,
    token_cache_s: Annotated[
        float,
        typer.Option(
            "--token-cache-s",
            min=0,
            help="seconds a validated token is trusted without asking the store; a revoked token is refused "
            "at most this long after `ceiling token revoke` (0: ask every time)",
        ),
    ] = 5.0,
    no_warm_driver: Annotated[
        bool,
        typer.Option(
            "--no-warm-driver",
            help="start each sweep's process when the sweep starts, instead of keeping one started ahead",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API: submit sweeps to a queue that runs them on Ray, follow them, query their laws.
    OpenAPI at /openapi.json, interactive docs at /docs; every endpoint but /v1/health and /v1/ready
    needs `Authorization: Bearer <token>` (`ceiling token create --user NAME`).

    Examples:
      ceiling token create --user alice && ceiling serve
      ceiling serve --host 0.0.0.0 --db postgresql://ceiling@db/ceiling --address ray://head:10001
    """

    def body() -> None:
        import uvicorn

        from orchestrator.api import ServiceSettings, create_app
        from orchestrator.api.store import ServiceStore
        from orchestrator.store import api_tokens, redact
        from orchestrator.tracking import resolve_tracking_uri

        work = workdir_path(workdir)
        url = db_url(db, work)
        store = ServiceStore.open(url)
        if not api_tokens.any_live(store):
            if not is_loopback(host):
                store.close()
                raise BadInput(
                    f"--host {host}: refusing to serve beyond this machine with no API token in the store; "
                    "create one first with `ceiling token create --user NAME` (same --workdir / --db)"
                )
            err_console.print(
                "no API token yet: every endpoint but /v1/health will answer 401; "
                "create one with `ceiling token create --user NAME`",
                style="yellow",
            )
        settings = ServiceSettings(
            db_url=url,
            workdir=work,
            address=address,
            tracking_uri=None if no_mlflow else resolve_tracking_uri(tracking_uri, work),
            no_mlflow=no_mlflow,
            max_running_sweeps=max_running_sweeps,
            token_cache_s=token_cache_s,
            warm_driver=not no_warm_driver,
        )
        app = create_app(settings, store=store)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        err_console.print(
            f"ceiling serve on http://{host}:{port} (docs /docs), store {redact(url)}, "
            f"Ray {address or 'embedded (one for all sweeps)'}, {max_running_sweeps} sweep(s) at once",
            highlight=False,
        )
        # uvicorn's access log is the request line and status: no headers, so never a token.
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False)

    guarded(body)
