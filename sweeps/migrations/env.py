"""Alembic environment of the results database: runs on the connection ``sweeps.schema`` hands it."""

from alembic import context

from sweeps.store import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
