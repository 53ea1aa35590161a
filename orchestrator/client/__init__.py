"""The client side of `ceiling serve`: find the server and the token, call the HTTP API, map its errors.

A user with only a server address and a token does the whole tour through this package: the CLI commands
given ``--server URL`` (or ``CEILING_SERVER``) fetch the same ``--json`` document from the server that
they would compute from a local store, and print it with the same renderer.
"""

from orchestrator.client.config import (
    SERVER_ENV,
    TOKEN_ENV,
    ClientError,
    load_token,
    normalise_server,
    token_path,
)
from orchestrator.client.server_client import ServerClient

__all__ = [
    "SERVER_ENV",
    "TOKEN_ENV",
    "ClientError",
    "ServerClient",
    "load_token",
    "normalise_server",
    "token_path",
]
