"""Bearer-token authentication: ``Authorization: Bearer <token>`` on every endpoint but health/ready.

A missing, malformed, wrong or revoked token is 401 with ``WWW-Authenticate: Bearer``; the answer
never repeats the token it was sent. Reading is open to every user; a sweep's owner or an admin may
cancel it (403 for anyone else).
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from orchestrator.store import api_tokens
from orchestrator.store.api_tokens import TokenInfo

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ceiling"'}
MAX_TOKEN_CHARS = 256  # ours are ~50; a longer one cannot match, so it is not even hashed


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


def current_user(request: Request) -> TokenInfo:
    """The dependency of every authenticated route: the live token's user, or 401."""
    token = bearer_token(request)
    info = None
    if len(token) <= MAX_TOKEN_CHARS and token.isascii():
        info = api_tokens.verify(request.app.state.store, token)
    if info is None:
        raise unauthorized("the token is not valid (wrong or revoked); ask an admin for a new one")
    request.state.user = info
    return info


def may_cancel(user: TokenInfo, owner: str) -> bool:
    return user.admin or user.user == owner


def forbidden(message: str) -> HTTPException:
    return HTTPException(status_code=403, detail=message)
