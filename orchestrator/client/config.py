"""Where the client finds its server and its token, and the error it raises for anything the user must fix.

The token comes from ``CEILING_TOKEN`` or from the file ``$XDG_CONFIG_HOME/ceiling/token`` (default
``~/.config/ceiling/token``). The file must be readable by its owner only (mode 0600, like ``~/.ssh`` keys
and ``~/.pgpass``): a token another local user can read is refused, not used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SERVER_ENV = "CEILING_SERVER"
TOKEN_ENV = "CEILING_TOKEN"
EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2


class ClientError(Exception):
    """A problem talking to the server, with the CLI exit code it maps to (2: the user must fix
    something; 1: the server or the network failed) and a message that never holds the token."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def token_path() -> Path:
    """``$XDG_CONFIG_HOME/ceiling/token``, or ``~/.config/ceiling/token`` when XDG_CONFIG_HOME is unset."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home).expanduser() / "ceiling" / "token"


def how_to_get_a_token() -> str:
    return (
        f"set {TOKEN_ENV}, or put the token in {token_path()} (chmod 600); an admin makes one on the "
        "server with `ceiling token create --user YOU`"
    )


def load_token() -> str:
    """The bearer token: ``CEILING_TOKEN`` first, then the 0600 token file. Raises ClientError (exit 2)
    when there is none, or when the file is readable by others than its owner."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    path = token_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ClientError(f"no token for the ceiling server: {how_to_get_a_token()}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ClientError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); the token file must be "
            f"private: chmod 600 {path}"
        )
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ClientError(f"{path} is empty: {how_to_get_a_token()}")
    return token


def normalise_server(server: str) -> str:
    """``host:8000``, ``http://host:8000/`` and ``http://host:8000/v1`` all mean ``http://host:8000``."""
    text = server.strip()
    if not text:
        raise ClientError(
            f"--server / {SERVER_ENV} is empty; give the server's address, e.g. http://host:8000"
        )
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(
            f"--server: {server!r} is not an http(s) address; give one such as http://host:8000"
        )
    if parts.username or parts.password:
        raise ClientError(
            f"--server: put no user or password in the address; the token goes in {TOKEN_ENV} or "
            f"{token_path()}"
        )
    path = parts.path.rstrip("/").removesuffix("/v1")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
