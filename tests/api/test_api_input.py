"""Bad input against a real `ceiling serve`: 413 over 1 MiB (declared or streamed), 422 naming the
field path and the fix, 404 naming the sweep; idempotent submit; a rejected request changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.api.conftest import Served

MIB = 1 << 20


def _store_rows(served: Served) -> dict[str, int]:
    from sqlalchemy import text

    from orchestrator.store import Store

    store = Store.open(served.server.db_url)
    try:
        with store.engine.connect() as connection:
            return {
                table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("sweep_queue", "sweeps", "trials", "api_tokens")
            }
    finally:
        store.close()


def test_bodies_over_one_mib_are_refused_before_parsing(served: Served):
    server, before = served.server, _store_rows(served)
    declared = server.request("POST", "/v1/sweeps", served.alice, data=b"name: x\n" + b"#" * MIB)
    assert declared.status_code == 413 and "1 MiB" in declared.json()["detail"]

    def chunks():  # no Content-Length: the cap counts the streamed bytes
        for _ in range(20):
            yield b"#" * (128 << 10)

    streamed = server.request("POST", "/v1/sweeps", served.alice, data=chunks())
    assert streamed.status_code == 413
    assert _store_rows(served) == before


def test_a_bad_spec_is_422_with_the_field_path_and_the_fix(served: Served, examples: Path):
    server, before = served.server, _store_rows(served)
    spec = yaml.safe_load((examples / "smoke.yaml").read_text())
    spec["architectures"] = ["transformer", "mamba2", "mamab"]
    answer = server.request("POST", "/v1/sweeps", served.alice, json=spec)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"][:2] == ["architectures", 2]
    assert "unknown architecture 'mamab'; known:" in problem["msg"] and "mamba2" in problem["msg"]

    spec["architectures"], spec["sizes"] = ["transformer"], ["20k", "lots"]
    (problem,) = server.request("POST", "/v1/sweeps", served.alice, json=spec).json()["detail"]
    assert problem["loc"] == ["sizes", 1]

    syntax = server.request(
        "POST", "/v1/sweeps", served.alice, data="name: x\n  bad: [", headers={"Content-Type": "text/yaml"}
    )
    assert syntax.status_code == 422 and "YAML syntax error at line 2" in syntax.json()["detail"][0]["msg"]
    not_json = server.request(
        "POST", "/v1/sweeps", served.alice, data="{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["loc"] == ["body"]
    bad_option = server.request(
        "GET", "/v1/sweeps/smoke/predict?arch=transformer&params=zz&tokens=1", served.alice
    )
    assert bad_option.status_code in (404, 422)  # the sweep may not exist here; either way no 500
    assert _store_rows(served) == before


def test_unknown_sweeps_are_404_naming_them(served: Served):
    for path in ("/v1/sweeps/nope", "/v1/sweeps/nope/runs", "/v1/sweeps/nope/laws", "/v1/sweeps/no%00pe"):
        answer = served.server.request("GET", path, served.bob)
        assert answer.status_code == 404, (path, answer.text)
        assert "GET /v1/sweeps" in answer.json()["detail"]


def test_submit_is_idempotent(served: Served, examples: Path):
    server = served.server
    text = (examples / "smoke.yaml").read_text().replace("name: smoke", "name: idempotent")
    first = server.request(
        "POST", "/v1/sweeps", served.alice, data=text, headers={"Content-Type": "application/yaml"}
    )
    assert first.status_code == 201, first.text
    assert first.json() == {
        "sweep": "idempotent",
        "status": "queued",
        "created": True,
        "trials": 4,
        "owner": "alice",
    }
    rows = _store_rows(served)

    again = server.request(
        "POST", "/v1/sweeps", served.alice, data=text, headers={"Content-Type": "text/yaml"}
    )
    assert again.status_code == 200 and again.json() | {"created": True} == first.json()
    as_json = server.request(
        "POST", "/v1/sweeps", served.bob, json=yaml.safe_load(text)
    )  # same spec, other form
    assert as_json.status_code == 200 and as_json.json()["owner"] == "alice"
    assert _store_rows(served) == rows

    changed = yaml.safe_load(text) | {"seeds": [0, 1]}
    conflict = server.request("POST", "/v1/sweeps", served.alice, json=changed)
    assert conflict.status_code == 409 and conflict.json()["detail"][0]["loc"] == ["body", "name"]
    assert _store_rows(served) == rows

    listed = server.request("GET", "/v1/sweeps", served.bob).json()["sweeps"]
    (entry,) = [s for s in listed if s["sweep"] == "idempotent"]
    assert entry["status"] == "queued" and entry["owner"] == "alice" and entry["counts"] == {"pending": 4}
    status = server.request("GET", "/v1/sweeps/idempotent", served.bob).json()
    (document,) = status["sweeps"]
    assert document["name"] == "idempotent" and document["status"] == {"pending": 4}
    assert status["queue"]["status"] == "queued" and status["queue"]["started_at"] is None
    runs = server.request("GET", "/v1/sweeps/idempotent/runs", served.bob).json()
    assert runs["sweep"] == "idempotent" and len(runs["trials"]) == 4
    csv = server.request("GET", "/v1/sweeps/idempotent/runs?format=csv", served.bob)
    assert csv.headers["content-type"].startswith("text/csv") and len(csv.text.splitlines()) == 5
    json.dumps(runs)


def test_metrics_count_the_queue_and_time_requests(served: Served):
    text = served.server.request("GET", "/metrics", served.alice).text
    assert 'ceiling_queue_sweeps{status="queued"}' in text
    assert "ceiling_running_trials 0.0" in text
    assert 'ceiling_request_duration_seconds_count{method="GET",route="/v1/health",status="200"}' in text
