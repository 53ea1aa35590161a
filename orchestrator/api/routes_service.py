"""Liveness, readiness and metrics."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from orchestrator.api.auth import current_user

router = APIRouter()
RAY_PROBE_TIMEOUT_S = 1.0


@router.get("/v1/health", summary="Liveness: the process answers", tags=["service"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/v1/ready",
    summary="Readiness: the store answers and the Ray address (if any) is reachable",
    tags=["service"],
    responses={503: {"description": "not ready; the body says what is not"}},
)
async def ready(request: Request) -> JSONResponse:
    store_state, ray_state = (
        await run_in_threadpool(_probe_store, request.app.state.store),
        await run_in_threadpool(_probe_ray, request.app.state.settings.address),
    )
    ok = store_state == "ok" and ray_state == "ok"
    document = {"status": "ready" if ok else "not ready", "store": store_state, "ray": ray_state}
    return JSONResponse(document, status_code=200 if ok else 503)


def _probe_store(store: Any) -> str:
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "ok"
    except Exception:
        return "unavailable"


def _probe_ray(address: str | None) -> str:
    """``ok`` for an embedded Ray (each sweep starts its own) or a reachable cluster address."""
    if not address or address in ("local", "auto"):
        return "ok"
    target = address if "://" in address else f"ray://{address}"
    parts = urlsplit(target)
    try:
        port = parts.port or (10001 if parts.scheme == "ray" else 6379)
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=RAY_PROBE_TIMEOUT_S):
            return "ok"
    except (OSError, ValueError):
        return "unreachable"


@router.get(
    "/metrics",
    summary="Prometheus metrics: queue length by status, running trials, request latency by route",
    tags=["service"],
    response_class=Response,
)
async def metrics(request: Request, _: Any = Depends(current_user)) -> Response:
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
