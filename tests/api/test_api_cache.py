"""The response cache and the token cache of `ceiling serve`, against a real server: a cached law
document is the same bytes as the first answer; a trial that finishes in the sweep invalidates it; a
revoked token is refused within the token cache's lifetime."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.api import SWEEP, fill_store
from orchestrator.api.response_cache import STAMP_TTL_S
from tests.api.server import Server, make_token
from tests.factories import make_trial

N_BOOT = "50"  # enough resamples for the documents' bootstrap blocks; fast on a busy machine


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    folder = tmp_path_factory.mktemp("cache")
    db = f"sqlite:///{folder / 'ceiling.db'}"
    fill_store(db)
    token = make_token(db, "alice")
    server = Server(folder, db).start()
    try:
        yield server, token
    finally:
        server.stop()


def _get(server: Server, token: str, route: str, **params: str):  # type: ignore[no-untyped-def]
    answer = server.request("GET", f"/v1/sweeps/{SWEEP}/{route}", token, params={"n_boot": N_BOOT, **params})
    assert answer.status_code == 200, answer.text
    return answer


def _add_finished_trial(db_url: str) -> None:
    """One more done law point in the sweep, as a worker finishing a trial would leave it."""
    from orchestrator.store import Store

    store = Store.open(db_url)
    try:
        n, d = 5e8, 1e10
        store.add_trials(
            SWEEP,
            [
                make_trial(
                    "transformer-late",
                    size_target=n,
                    params_total=int(n * 1.2),
                    params_embedding=int(n * 0.2),
                    params_non_embedding=int(n),
                    tokens=int(d),
                    flops_6nd=6.0 * n * d,
                    flops_exact=6.6 * n * d,
                )
            ],
        )
        attempt = store.claim("transformer-late")
        store.finish("transformer-late", attempt, final_val_loss=2.0, final_val_bpb=2.0 / 0.693)
    finally:
        store.close()


def test_a_cached_document_is_the_first_answer_until_a_trial_finishes(ladder: tuple[Server, str]):
    server, token = ladder
    for route, params in (("laws", {}), ("compare", {}), ("predict", {"arch": "gla", "compute": "1e21"})):
        first = _get(server, token, route, **params)
        again = _get(server, token, route, **params)
        assert again.headers["X-Ceiling-Cache"] == "hit", route
        assert (
            again.content == first.content and again.headers["content-type"] == first.headers["content-type"]
        )
    # Another query (other seed) is another entry, computed once then served from the cache.
    other = _get(server, token, "laws", seed="1")
    assert other.headers["X-Ceiling-Cache"] == "miss"
    assert _get(server, token, "laws", seed="1").headers["X-Ceiling-Cache"] == "hit"

    before = _get(server, token, "laws").json()
    _add_finished_trial(server.db_url)
    time.sleep(STAMP_TTL_S)  # the sweep's stamp is read at most once a second
    after = _get(server, token, "laws")
    assert after.headers["X-Ceiling-Cache"] == "miss"  # the sweep's stamp changed: computed afresh
    points = lambda document: document["fits"]["transformer"]["n_runs"]  # noqa: E731
    assert points(after.json()) == points(before) + 1
    assert _get(server, token, "laws").content == after.content
    compare = _get(server, token, "compare")
    assert compare.headers["X-Ceiling-Cache"] == "miss"


def test_unknown_sweeps_and_bad_queries_are_not_cached(ladder: tuple[Server, str]):
    server, token = ladder
    for _ in range(2):
        missing = server.request("GET", "/v1/sweeps/nope/laws", token)
        assert missing.status_code == 404 and "X-Ceiling-Cache" not in missing.headers
        bad = server.request("GET", f"/v1/sweeps/{SWEEP}/compare", token, params={"baseline": "mamba"})
        assert bad.status_code == 422 and "--baseline 'mamba'" in bad.text


def test_a_revoked_token_is_refused_within_the_token_cache_lifetime(tmp_path: Path):
    from orchestrator.store import Store, api_tokens

    db = f"sqlite:///{tmp_path / 'ceiling.db'}"
    token = make_token(db, "carol")
    server = Server(tmp_path, db, token_cache_s=3.0).start()
    try:
        assert server.request("GET", "/v1/sweeps", token).status_code == 200  # validated: now cached
        store = Store.open(db)
        api_tokens.revoke(store, user="carol")
        store.close()
        revoked_at = time.monotonic()
        codes = []
        while time.monotonic() - revoked_at < 3.0 + 2.0:
            codes.append(server.request("GET", "/v1/sweeps", token).status_code)
            if codes[-1] == 401:
                break
            time.sleep(0.1)
        # Refused within the lifetime (plus a request's time on a busy machine), and trusted before.
        assert codes[-1] == 401, codes
        assert set(codes[:-1]) <= {200}
        assert time.monotonic() - revoked_at < 3.0 + 2.0
        # A wrong token is never remembered: refused every time.
        assert server.request("GET", "/v1/sweeps", "ceil_wrong").status_code == 401
    finally:
        server.stop()
