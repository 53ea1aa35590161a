"""Bearer-token authentication: ``Authorization: Bearer <token>`` on every endpoint but health/ready.

A missing, malformed, wrong or revoked token is 401 with ``WWW-Authenticate: Bearer``; the answer
never repeats the token it was sent. Reading is open to every user; a sweep's owner or an admin may
cancel it (403 for anyone else).

Validated tokens are remembered in memory for ``token_cache_s`` seconds (5 by default, ``ceiling serve
--token-cache-s``), keyed by the token's SHA-256 (never the token itself), so a busy client does not
cost a store query per request. So a revoked token keeps working for at most that long; an unknown or
revoked token is never remembered, and is looked up in the store every time.
"""

from __future__ import annotations

import threading
import time

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from orchestrator.store import api_tokens
from orchestrator.store.api_tokens import TokenInfo

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ceiling"'}
MAX_TOKEN_CHARS = 256  # ours are ~50; a longer one cannot match, so it is not even hashed
TOKEN_CACHE_ENTRIES = 4096  # live tokens remembered at once; past that the cache starts afresh


class TokenCache:
    """SHA-256 of a token -> (its user's record, when to look it up again). Only live tokens go in."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[TokenInfo, float]] = {}

    def cached(self, token: str) -> TokenInfo | None:
        """The token's record if it was validated less than ``ttl_s`` ago (no store query)."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(api_tokens.hash_token(token))
        return entry[0] if entry is not None and entry[1] > time.monotonic() else None

    def verify(self, store: object, token: str) -> TokenInfo | None:
        """The live token's record from the store (remembered for ``ttl_s``), or None."""
        if self.ttl_s <= 0:
            return api_tokens.verify(store, token)
        digest, now = api_tokens.hash_token(token), time.monotonic()
        info = api_tokens.verify(store, token)
        with self._lock:
            if info is None:
                self._entries.pop(digest, None)
            else:
                if len(self._entries) >= TOKEN_CACHE_ENTRIES:
                    self._entries.clear()  # bounded, and simple: the next requests just query again
                self._entries[digest] = (info, now + self.ttl_s)
        return info


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers=CHALLENGE)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized(
            "no token: send 'Authorization: Bearer <token>' (an admin creates one with "
            "`ceiling token create --user NAME`)"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


async def current_user(request: Request) -> TokenInfo:
    """The dependency of every authenticated route: the live token's user, or 401. Asynchronous so that
    a remembered token costs no trip through the thread pool; the store is asked from a thread."""
    token = bearer_token(request)
    info = None
    if len(token) <= MAX_TOKEN_CHARS and token.isascii():
        cache = request.app.state.token_cache
        info = cache.cached(token) or await run_in_threadpool(cache.verify, request.app.state.store, token)
    if info is None:
        raise unauthorized("the token is not valid (wrong or revoked); ask an admin for a new one")
    request.state.user = info
    return info


def may_cancel(user: TokenInfo, owner: str) -> bool:
    return user.admin or user.user == owner


def forbidden(message: str) -> HTTPException:
    return HTTPException(status_code=403, detail=message)
