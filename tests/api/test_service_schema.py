"""Migration 0004 (the service's queue and tokens) on SQLite and Postgres: the tables match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchestrator.store import Store
from orchestrator.store.schema import Base


def test_migrated_schema_matches_the_models(store_url: str):
    store = Store.open(store_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = [
                diff
                for diff in compare_metadata(context, Base.metadata)
                if any(table in repr(diff) for table in ("sweep_queue", "api_tokens"))
            ]
        assert differences == []
    finally:
        store.close()
