"""Alembic environment: runs on the connection handed over by :func:`orchestrator.store.engine.migrate`."""

from alembic import context

from orchestrator.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through orchestrator.store.engine.migrate(), which passes a connection"
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
