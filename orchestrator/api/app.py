"""The service's application: routes, auth, error mapping, body cap, metrics and the queue runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orchestrator.api import errors
from orchestrator.api.auth import TokenCache
from orchestrator.api.metrics import ServiceMetrics
from orchestrator.api.middleware import BodyLimit, Guard
from orchestrator.api.response_cache import ResponseCache
from orchestrator.api.settings import ServiceSettings
from orchestrator.api.single_flight import SingleFlight
from orchestrator.api.store import ServiceStore

DESCRIPTION = """\
Submit scaling-law sweeps, follow them and query their fitted laws: the `ceiling` commands over HTTP.
Every body is the JSON document the same command prints with `--json`.

Authentication: `Authorization: Bearer <token>` on every endpoint but `/v1/health` and `/v1/ready`;
an admin creates tokens with `ceiling token create --user NAME`. Errors: 401 (no, wrong or revoked
token), 403 (not yours to cancel), 404 (unknown sweep), 409 (another spec under a queued sweep's name),
413 (body over 1 MiB), 422 (bad input: each problem's field path and fix), 503 (store unavailable: retry).

Caching: a validated token is remembered for `ceiling serve --token-cache-s` seconds (5 by default), so a
revoked token is refused at most that long after `ceiling token revoke`. Law documents (laws, predict,
compare) are kept per query until a trial of the sweep finishes, fails or is added (seen within 1 s);
the `X-Ceiling-Cache` header says `hit` or `miss`.
"""


def create_app(settings: ServiceSettings, *, store: ServiceStore | None = None) -> FastAPI:
    """The application for ``settings``; the store is opened (and migrated) here, before serving."""
    from orchestrator.api import routes_laws, routes_service, routes_sweeps
    from orchestrator.api.queue_runner import QueueRunner

    store = store or ServiceStore.open(settings.db_url)
    runner = QueueRunner(store, settings) if settings.run_queue else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            store.close()

    app = FastAPI(
        title="ceiling",
        version="1",
        summary="Scaling studies of Transformer and non-Transformer language models, as a service",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings, app.state.store, app.state.runner = settings, store, runner
    app.state.metrics = ServiceMetrics(store)
    app.state.single_flight = SingleFlight()  # reports
    app.state.response_cache = ResponseCache()  # laws, predict, compare
    app.state.token_cache = TokenCache(settings.token_cache_s)
    errors.install(app)
    for router in (routes_service.router, routes_sweeps.router, routes_laws.router):
        app.include_router(router)
    app.add_middleware(BodyLimit)
    app.add_middleware(Guard, observe=app.state.metrics.observe)  # added last: the outermost of the two
    return app
