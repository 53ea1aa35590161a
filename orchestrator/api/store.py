"""The service's view of the store: the same Store, but failing fast when the database is away.

The CLI and the workers ride out ~35 s of outage (orchestrator/store/engine.py retries). A request
should not hang that long: the service tries twice, then answers 503 (retry later) at once; its
scheduler loop simply tries again on its next tick.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from orchestrator.store import Store
from orchestrator.store.engine import with_retries

REQUEST_ATTEMPTS = 2  # one retry after 0.25 s: enough for a dropped pooled connection


class ServiceStore(Store):
    def _write(self, operation) -> Any:  # type: ignore[no-untyped-def]
        def run() -> Any:
            with self.session() as session, session.begin():
                return operation(session)

        return with_retries(run, attempts=REQUEST_ATTEMPTS, first_delay_s=0.25)

    def _read(self, operation) -> Any:  # type: ignore[no-untyped-def]
        def run() -> Any:
            with self.session() as session:
                return operation(session)

        return with_retries(run, attempts=REQUEST_ATTEMPTS, first_delay_s=0.25)

    def save_fit(self, **fit: Any) -> None:
        """Cache a fit; a concurrent request that cached the same inputs first wins (same hash, same
        result), where the CLI's one writer never meets the unique key."""
        try:
            super().save_fit(**fit)
        except IntegrityError:
            pass
