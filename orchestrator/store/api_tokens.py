"""The service's bearer tokens: create (shown once), verify, revoke, list. Imports no torch or Ray.

Only a SHA-256 of each token is stored. A plain fast hash is enough here, unlike for passwords: the
tokens are 256 random bits from ``secrets``, so there is nothing to guess by brute force and no
dictionary to precompute, and a slow KDF would only add latency to every request. Comparison of the
hash is constant-time (``hmac.compare_digest``) so response timing leaks nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store.schema import utcnow
from orchestrator.store.service_schema import ApiToken

TOKEN_PREFIX = "ceil_"  # lets secret scanners and people recognise a leaked token
USER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "admin": self.admin,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.user, bool(row.admin), row.created_at, row.revoked_at)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_user(user: str) -> str:
    if not USER_PATTERN.match(user):
        raise ValueError(
            f"--user: {user!r} is not a user name; use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return user


def create(store: Any, user: str, *, admin: bool = False) -> tuple[TokenInfo, str]:
    """A new token for ``user``. Returns its record and the token itself, which is never stored."""
    check_user(user)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)

    def op(session: Session) -> TokenInfo:
        row = ApiToken(id=token_id, token_hash=hash_token(token), user=user, admin=admin)
        session.add(row)
        session.flush()
        return _info(row)

    return store._write(op), token


def verify(store: Any, token: str) -> TokenInfo | None:
    """The live (not revoked) token's record, or None. Looked up by hash, then compared in constant time."""
    digest = hash_token(token)

    def op(session: Session) -> TokenInfo | None:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
            return None
        return _info(row)

    return store._read(op)


def revoke(store: Any, *, token_id: str | None = None, user: str | None = None) -> list[TokenInfo]:
    """Revoke one token by id, or every live token of a user. Returns the tokens revoked now."""
    if (token_id is None) == (user is None):
        raise ValueError("give a TOKEN_ID or --user (not both)")

    def op(session: Session) -> list[TokenInfo]:
        query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
        query = query.where(ApiToken.id == token_id) if token_id else query.where(ApiToken.user == user)
        rows = list(session.scalars(query))
        for row in rows:
            row.revoked_at = utcnow()
        session.flush()
        return [_info(row) for row in rows]

    return store._write(op)


def listing(store: Any, *, include_revoked: bool = False) -> list[TokenInfo]:
    def op(session: Session) -> list[TokenInfo]:
        query = select(ApiToken).order_by(ApiToken.created_at)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [_info(row) for row in session.scalars(query)]

    return store._read(op)


def any_live(store: Any) -> bool:
    return bool(listing(store))
