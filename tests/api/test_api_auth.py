"""Authentication against a real `ceiling serve`: no, wrong or revoked token -> 401 with a Bearer
challenge on every endpoint but health/ready; another user's cancel -> 403; the owner's and an
admin's cancel work; no token ever appears in an answer or in the server's log."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.api.conftest import Served
from tests.api.server import TOKEN_CACHE_S, make_token

SWEEP_PATHS = ("/v1/sweeps/smoke", "/v1/sweeps/smoke/runs", "/v1/sweeps/smoke/laws")


def _authenticated_routes(served: Served) -> list[tuple[str, str]]:
    paths = requests.get(served.server.url + "/openapi.json", timeout=30).json()["paths"]
    routes = []
    for path, methods in paths.items():
        for method in methods:
            if path not in ("/v1/health", "/v1/ready"):
                routes.append((method.upper(), path.replace("{name}", "smoke")))
    return routes


def test_health_and_ready_need_no_token(served: Served):
    assert served.server.request("GET", "/v1/health").json() == {"status": "ok"}
    ready = served.server.request("GET", "/v1/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "store": "ok", "ray": "ok"}


def test_every_other_endpoint_refuses_no_wrong_or_revoked_token(served: Served):
    server = served.server
    revoked = make_token(server.db_url, "carol")
    assert server.request("GET", "/v1/sweeps", revoked).status_code == 200
    from orchestrator.store import Store, api_tokens

    store = Store.open(server.db_url)
    assert [t.user for t in api_tokens.revoke(store, user="carol")] == ["carol"]
    store.close()
    time.sleep(TOKEN_CACHE_S)  # the server trusts a validated token this long (test_api_cache.py)

    routes = _authenticated_routes(served)
    assert ("POST", "/v1/sweeps/smoke/cancel") in routes and ("GET", "/metrics") in routes
    bodies = []
    for method, path in routes:
        for headers in (
            {},
            {"Authorization": "Bearer ceil_not-a-real-token"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Basic {served.alice}"},
            {"Authorization": "Bearer " + "x" * 5000},
        ):
            answer = server.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers.keys(), answer.text)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            bodies.append(answer.text)
    assert not [b for b in bodies if revoked in b or served.alice in b or "Traceback" in b]


def test_cancel_is_for_the_owner_or_an_admin(served: Served, examples: Path):
    server = served.server
    spec = (examples / "smoke.yaml").read_text()

    def submit(name: str) -> None:
        body = spec.replace("name: smoke", f"name: {name}")
        answer = server.request(
            "POST", "/v1/sweeps", served.alice, data=body, headers={"Content-Type": "text/yaml"}
        )
        assert answer.status_code in (200, 201), answer.text

    submit("owned-by-alice")
    refused = server.request("POST", "/v1/sweeps/owned-by-alice/cancel", served.bob)
    assert refused.status_code == 403 and "alice" in refused.json()["detail"]
    assert (
        server.request("GET", "/v1/sweeps/owned-by-alice", served.bob).json()["queue"]["status"] == "queued"
    )

    by_owner = server.request("POST", "/v1/sweeps/owned-by-alice/cancel", served.alice)
    assert by_owner.status_code == 200 and by_owner.json() == {
        "sweep": "owned-by-alice",
        "status": "cancelled",
    }

    submit("cancelled-by-admin")
    by_admin = server.request("POST", "/v1/sweeps/cancelled-by-admin/cancel", served.admin)
    assert by_admin.json() == {"sweep": "cancelled-by-admin", "status": "cancelled"}
    missing = server.request("POST", "/v1/sweeps/never-submitted/cancel", served.admin)
    assert missing.status_code == 404 and "GET /v1/sweeps" in missing.json()["detail"]


def test_tokens_never_reach_the_log(served: Served):
    server = served.server
    server.request("GET", "/v1/sweeps", served.alice)
    server.request("GET", "/v1/sweeps/nope", served.bob)
    server.request("GET", "/v1/sweeps", "ceil_wrong")
    log = server.log
    assert "GET /v1/sweeps HTTP/1.1" in log  # the access log is on: it records requests, not headers
    for secret in (served.alice, served.bob, served.admin, "ceil_wrong"):
        assert secret not in log
    assert "Traceback" not in log
