"""Alembic environment of the results database: runs on the connection ``sweeps.schema`` hands it."""

from alembic import context

from sweeps.schema import VERSION_TABLE
from sweeps.store import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
