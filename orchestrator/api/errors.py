"""Errors as HTTP answers: the same problems the CLI reports with exit code 2, as 4xx with the field path.

Bodies hold a message for people and never a traceback, a token or a database password. An
unexpected error is one log line and a bare 500: orchestrator/api/middleware.py (Guard) answers it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.operations.errors import BadInput, SweepNotFound
from orchestrator.operations.submit import SpecInvalid, SweepConflict

log = logging.getLogger("ceiling.api")
STORE_RETRY_AFTER_S = 5


def problem(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg}


def _loc_of_option(message: str) -> list[Any]:
    """``--n-boot: ...`` or ``--params 'zz' is ...`` names the query parameter (``n_boot``, ``params``):
    the field path of the problem. A message about the spec or the runs has none."""
    match = re.match(r"--([a-z][a-z0-9-]*)\b", message)
    return ["query", match.group(1).replace("-", "_")] if match else []


def _redacted(message: str) -> str:
    from orchestrator.store.engine import _redact_text

    return _redact_text(message)


def install(app: FastAPI) -> None:
    """Register the handlers that turn our errors into the API's answers."""

    @app.exception_handler(SpecInvalid)
    async def spec_invalid(_: Request, exc: SpecInvalid) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.problems})

    @app.exception_handler(SweepNotFound)
    async def sweep_not_found(_: Request, exc: SweepNotFound) -> JSONResponse:
        return JSONResponse(
            status_code=404,
            content={"detail": f"{exc}; GET /v1/sweeps lists them"},
        )

    @app.exception_handler(SweepConflict)
    async def sweep_conflict(_: Request, exc: SweepConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": [problem(["body", "name"], str(exc))]})

    @app.exception_handler(BadInput)
    async def bad_input(_: Request, exc: BadInput) -> JSONResponse:
        message = str(exc)
        return JSONResponse(status_code=422, content={"detail": [problem(_loc_of_option(message), message)]})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input; the path and the message say enough.
        detail = [problem(list(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, _redacted(first_line))
        return JSONResponse(
            status_code=503,
            content={"detail": "the store is unavailable; retry in a few seconds"},
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )

    for error_type in (OperationalError, DisconnectionError, DBAPIError):
        app.add_exception_handler(error_type, store_unavailable)
