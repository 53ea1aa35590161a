"""`ServerClient`: the HTTP calls the CLI makes to `ceiling serve`, with its errors mapped to exit codes.

Every answer that is not a success becomes a ClientError whose message a person can act on:
422 names the field (``--n-boot: ...``, ``architectures[2]: ...``) and exits 2 like the local command;
401/403 say how to get a token or the right to act; 404 and 413 exit 2; a 5xx, a timeout or a refused
connection exit 1 and name the server's address. The token travels only in the Authorization header
and appears in no message.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.client.config import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    SERVER_ENV,
    ClientError,
    how_to_get_a_token,
    load_token,
    normalise_server,
)

API = "/v1"
CONNECT_TIMEOUT_S = 10.0
# A first fit of a large sweep (1000 bootstrap resamples per architecture) can take minutes on the server.
READ_TIMEOUT_S = 900.0
Params = dict[str, Any]


class ServerClient:
    """One server address and one token; a pooled HTTP session shared by all calls."""

    def __init__(self, server: str, token: str | None = None, *, read_timeout_s: float = READ_TIMEOUT_S):
        import requests

        self.base_url = normalise_server(server)
        self._token = token
        self._timeout = (CONNECT_TIMEOUT_S, read_timeout_s)
        # The environment's proxy and CA-bundle settings apply (a team server behind a corporate proxy or
        # with its own CA); the token goes as `auth`, so no ~/.netrc entry can replace it.
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls -------------------------------------------------------------------------------------------

    def get_json(self, path: str, params: Params | None = None) -> Any:
        return self._request("GET", path, params=params).json()

    def get_text(self, path: str, params: Params | None = None) -> str:
        return self._request("GET", path, params=params).text

    def get_bytes(self, path: str, params: Params | None = None) -> bytes:
        return self._request("GET", path, params=params).content

    def post_json(self, path: str, *, body: bytes | None = None, content_type: str | None = None) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        return self._request("POST", path, data=body, headers=headers).json()

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``; needs no token."""
        return self._request("GET", "/health", authenticated=False).json()

    # -- plumbing ----------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{API}{path}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ):
        import requests

        url = self.url(path)
        all_headers = {"Accept": "application/json, text/csv, text/html, text/markdown", **(headers or {})}
        auth = None
        if authenticated:
            if self._token is None:
                self._token = load_token()
            auth = BearerAuth(self._token)
        try:
            response = self._session.request(
                method,
                url,
                params=query_params(params),
                data=data,
                headers=all_headers,
                auth=auth,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect elsewhere would carry the token there
            )
        except requests.Timeout:
            raise ClientError(
                f"the ceiling server at {self.base_url} did not answer {method} {API}{path} in time; "
                "it may be busy fitting: retry, or check it with `curl " + self.url("/ready") + "`",
                EXIT_FAILURE,
            ) from None
        except requests.ConnectionError:
            raise ClientError(
                f"cannot reach the ceiling server at {self.base_url} (connection refused or no route); "
                f"is `ceiling serve` running there? check --server / {SERVER_ENV}",
                EXIT_FAILURE,
            ) from None
        if response.status_code >= 300:
            raise error_for(response.status_code, _detail(response), self.base_url, f"{method} {API}{path}")
        return response


class BearerAuth:
    """``Authorization: Bearer <token>`` as a requests auth (its repr never shows the token)."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def query_params(params: Params | None) -> dict[str, str]:
    """The CLI's options as query parameters: None is left out (the server's default applies, which is
    the CLI's), booleans are ``true``/``false``."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _detail(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    return body.get("detail", body) if isinstance(body, dict) else body


def error_for(status: int, detail: Any, server: str, what: str) -> ClientError:
    """The ClientError for one non-success answer (status code and the body's ``detail``)."""
    text = describe_detail(detail)
    if status == 401:
        return ClientError(
            f"the ceiling server at {server} refused the token: {text or 'unauthorized'}; {how_to_get_a_token()}",
            EXIT_BAD_INPUT,
        )
    if status == 403:
        return ClientError(
            f"not allowed: {text or 'forbidden'}; only the sweep's owner or an admin may do this: ask an admin "
            "(an admin token is made on the server with `ceiling token create --user NAME --admin`)",
            EXIT_BAD_INPUT,
        )
    if status == 413:
        return ClientError(f"{text or 'the request body is too large'} (the server takes up to 1 MiB)")
    if status in (400, 404, 409, 422):
        if not text or (status == 404 and not isinstance(detail, (str, list, dict))):
            text = f"{what} is not found at {server}; is this a ceiling server?"
        return ClientError(text, EXIT_BAD_INPUT)
    if status >= 500:
        return ClientError(
            f"the ceiling server at {server} failed on {what} ({status}: {text or 'server error'}); "
            "retry in a moment, or ask its admin to look at its log",
            EXIT_FAILURE,
        )
    return ClientError(f"unexpected answer {status} from {server} to {what}: {text}", EXIT_FAILURE)


def describe_detail(detail: Any) -> str:
    """FastAPI's error detail as the CLI says it: a list of ``{"loc": [...], "msg": ...}`` becomes
    ``field.path[2]: message`` lines (query parameters as their option, ``--n-boot``); a string stays."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        return describe_detail([detail]) if "msg" in detail else json.dumps(detail)
    if isinstance(detail, list):
        return "; ".join(_one_error(item) for item in detail)
    return "" if detail is None else str(detail)


def _one_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    message = str(item.get("msg", "invalid"))
    where = field_path(item.get("loc") or [])
    if not where or message.startswith(where):
        return message
    return f"{where}: {message}"


def field_path(loc: list[Any]) -> str:
    """``["body", "architectures", 2]`` -> ``architectures[2]``; ``["query", "n_boot"]`` -> ``--n-boot``."""
    parts = list(loc)
    origin = parts.pop(0) if parts and parts[0] in ("body", "query", "path", "header") else None
    if origin == "query" and len(parts) == 1:
        return "--" + str(parts[0]).replace("_", "-")
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text
