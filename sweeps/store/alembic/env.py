"""Alembic environment of the results database: runs on the connection ``sweeps.store.migrations`` hands it."""

from alembic import context

from sweeps.store.migrations import VERSION_TABLE
from sweeps.store.tables import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
