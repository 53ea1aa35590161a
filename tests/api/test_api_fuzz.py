"""Property-based fuzzing of every endpoint from the server's own OpenAPI document (schemathesis),
bounded in examples and time: no 500, no traceback in a body, and a rejected request changes nothing
in the store."""

from __future__ import annotations

import hashlib
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import text

from tests.api.conftest import Served

EXAMPLES_PER_OPERATION = 25
TIME_BUDGET_S = 45.0  # all operations together
TABLES = ("sweep_queue", "sweeps", "trials", "sweep_trials", "api_tokens", "fits")


def _store_digest(served: Served) -> str:
    """A digest of every row of the tables a request could touch."""
    from orchestrator.store import Store

    store = Store.open(served.server.db_url, create=False)
    try:
        digest = hashlib.sha256()
        with store.engine.connect() as connection:
            for table in TABLES:
                for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                    digest.update(repr(tuple(row)).encode())
        return digest.hexdigest()
    finally:
        store.close()


def _check(served: Served, response, before: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "' not in response.text
    for token in (served.alice, served.bob, served.admin):
        assert token not in response.text
    if response.status_code >= 400:
        assert _store_digest(served) == before, "a rejected request changed the store"


def test_every_endpoint_survives_generated_requests(served: Served):
    schema = schemathesis.openapi.from_url(served.server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11  # every route of the pinned API
    started, answers = time.monotonic(), Counter()
    for operation in operations:
        if time.monotonic() - started > TIME_BUDGET_S:
            pytest.fail(f"the fuzzing budget ({TIME_BUDGET_S:.0f} s) was spent before {operation.label}")

        fuzz = _fuzzer(operation, served, answers)
        try:
            fuzz()
        except AssertionError as exc:
            raise AssertionError(f"{operation.label}: {exc}") from None
    print(sorted(answers.items()))
    assert {label for label, _ in answers} == {operation.label for operation in operations}


def _fuzzer(operation, served: Served, answers: Counter):  # type: ignore[no-untyped-def]
    """Hypothesis' test of one operation: valid and invalid requests generated from its schema."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )
    )
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        before = _store_digest(served)
        response = case.call(
            base_url=served.server.url, headers={"Authorization": f"Bearer {served.bob}"}, timeout=30
        )
        _check(served, response, before)
        answers[(operation.label, response.status_code)] += 1

    return fuzz


QUERY_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(
        ["", "-1", "0", "1e21", "1B", "nan", "inf", "auto", "chinchilla", "val_bpb", "true", "md"]
    ),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    endpoint=st.sampled_from(["laws", "predict", "compare", "report", "runs"]),
    query=st.dictionaries(
        st.sampled_from(
            [
                "arch",
                "metric",
                "form",
                "n_boot",
                "seed",
                "backtest",
                "params",
                "tokens",
                "compute",
                "baseline",
                "at",
                "format",
                "law_points",
                "evals",
                "cost",
            ]
        ),
        QUERY_VALUES,
        max_size=5,
    ),
)
def test_law_queries_on_a_stored_sweep_never_fail_with_500(served: Served, endpoint: str, query: dict):
    """The generic fuzzing mostly meets unknown sweep names (404); here every request names a stored
    sweep (queued, no finished runs) so the options themselves are exercised."""
    server = served.server
    if not _stored_sweep.get("name"):
        spec = {
            "name": "fuzzed",
            "architectures": ["transformer"],
            "sizes": ["20k"],
            "budgets": {"tokens": ["64k"]},
        }
        spec |= {"data": {"corpus": "stdlib", "tokenizer": "byte", "seq_len": 64, "val_tokens": 16384}}
        spec |= {"training": {"batch_tokens": 2048}}
        answer = server.request("POST", "/v1/sweeps", served.alice, json=spec)
        assert answer.status_code in (200, 201), answer.text
        _stored_sweep["name"] = "fuzzed"
    if query.get("n_boot", "").lstrip("-").isdigit() and int(query["n_boot"]) > 50:
        query["n_boot"] = "50"  # the fuzzing is about input handling, not the bootstrap's speed
    before = _store_digest(served)
    response = server.request("GET", f"/v1/sweeps/fuzzed/{endpoint}", served.bob, params=query)
    _check(served, response, before)


_stored_sweep: dict[str, str] = {}
