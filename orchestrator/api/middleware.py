"""ASGI middleware of the service: the request-size cap, the last-resort error guard, and latency metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so that the body cap acts on the stream itself: a
request whose Content-Length, or whose streamed (chunked) body, passes the cap is answered 413
before any of it is parsed, and the body is buffered at most once up to the cap.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from orchestrator.store.engine import _redact_text

log = logging.getLogger("ceiling.api")
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a sweep file is a few kB
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Scope = dict[str, Any]


async def send_json(
    send: Any, status: int, document: Any, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413: by Content-Length at once, else while streaming."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = {"detail": f"the request body is over the limit of {self.limit} bytes (1 MiB)"}
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json(send, 400, {"detail": "Content-Length is not a number"})
                return
            if int(declared) > self.limit:
                await send_json(send, 413, too_large, ((b"connection", b"close"),))
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await send_json(send, 413, too_large, ((b"connection", b"close"),))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


class Guard:
    """The outermost layer: time every request for the latency histogram (by route template, so
    fuzzed paths cannot explode the label set), refuse control characters in the query string (422,
    before they reach the database), and answer an unexpected error with a bare 500 and one log line
    (never a traceback or a header in the log or the body)."""

    def __init__(self, app: Any, observe: Any):
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        response_started = False

        async def send_tracking(message: dict[str, Any]) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started, status = True, message["status"]
            await send(message)

        try:
            bad = _control_character_parameter(scope.get("query_string", b""))
            if bad is not None:
                await send_json(
                    send_tracking,
                    422,
                    {"detail": [{"loc": ["query", bad], "msg": "control characters are not allowed here"}]},
                )
                return
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            log.error(
                "internal error on %s %s: %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                _redact_text(first_line),
            )
            if not response_started:
                await send_json(send_tracking, 500, {"detail": "internal error; see the server log"})
        finally:
            route = scope.get("route")
            self.observe(
                scope.get("method", ""),
                getattr(route, "path", "unmatched"),
                status,
                time.perf_counter() - started,
            )


def _control_character_parameter(query_string: bytes) -> str | None:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return "query"
    for key, value in pairs:
        if CONTROL_CHARACTERS.search(key) or CONTROL_CHARACTERS.search(value):
            return key if not CONTROL_CHARACTERS.search(key) else "query"
    return None
