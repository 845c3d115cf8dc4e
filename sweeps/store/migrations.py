"""Whose database is this, and at which schema revision: checked before anything is written; migrated by Alembic.

A database is ebgan-sweep's if it is empty, if its ``ebgan_schema_version`` (Alembic's version table, named as
ours) names a revision of ``sweeps/store/alembic``,
or if it is one written before migrations existed (only our tables, with our key columns). Anything else (a
foreign ``trials`` table, another application's tables, a revision from a newer ebgan-sweep) is refused with the
file left as it was. Ours is upgraded to the newest revision (``sweeps/store/alembic/versions``) before use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

from sweeps.store.connection import SQLITE_WAIT_S

MIGRATIONS = Path(__file__).parent / "alembic"
VERSION_TABLE = "ebgan_schema_version"  # Alembic's version table, named as ours (Optuna has an alembic_version too)
OUR_TABLES = frozenset({"sweeps", "trials", "samples", "curves"})
# Columns that only our tables carry: what marks a database from before migrations as ours.
KEY_COLUMNS = {"sweeps": {"id", "name", "grid", "profile"}, "trials": {"sweep_id", "config_hash", "seed", "status"}}


# PostgreSQL advisory lock held by a migration's transaction: drivers started together on a new database would
# otherwise each create the same tables, and all but one fail on a duplicate key.
MIGRATION_LOCK = int.from_bytes(b"ebgan-mg", "big") >> 1


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our migrations, on ``connection`` (the commands run on it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def known_revisions() -> frozenset[str]:
    """Every revision id of our migrations."""
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def newest_revision() -> str:
    """The revision ``upgrade_to_newest`` brings a database to."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def refusal(engine: Engine) -> str | None:
    """Why the database behind ``engine`` is not ours to write (problem and fix), or None if it is. Reads only."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    if VERSION_TABLE in tables:
        with engine.connect() as connection:
            revisions = {row[0] for row in connection.execute(text(f"select version_num from {VERSION_TABLE}"))}
        unknown = sorted(revisions - known_revisions())
        if unknown:
            return (f"its schema revision {unknown[0]!r} is unknown to this ebgan-sweep (a newer ebgan-sweep or "
                    "another application wrote it); fix: upgrade ebgan-sweep, or pass another --db URL")
        return None
    foreign = sorted(tables - OUR_TABLES)
    foreign += sorted(name for name, columns in KEY_COLUMNS.items()
                      if name in tables and not columns <= {c["name"] for c in inspector.get_columns(name)})
    if tables and not foreign and not set(KEY_COLUMNS) <= tables:
        foreign = sorted(tables)
    if foreign:
        return (f"it holds tables ebgan-sweep did not make ({', '.join(foreign)}); "
                "fix: pass another --db URL (this database was left as it was)")
    return None


def upgrade_to_newest(engine: Engine) -> None:
    """Create our tables in an empty database, or migrate ours to the newest revision, in one transaction."""
    _migrate(engine, lambda config: command.upgrade(config, "head"))


def downgrade_to(engine: Engine, revision: str) -> None:
    """Migrate our database back to ``revision``, in one transaction (as an older ebgan-sweep would have left it)."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def _migrate(engine: Engine, action: Callable[[Config], None]) -> None:
    """Run an Alembic command in one transaction, one process at a time: it takes effect whole or not at all."""
    migrating = _sqlite_migration_engine(engine) if engine.dialect.name == "sqlite" else engine
    try:
        with migrating.begin() as connection:
            if engine.dialect.name == "postgresql":  # one migration at a time; the next then finds it done
                connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            action(alembic_config(connection))
    finally:
        if migrating is not engine:
            migrating.dispose()


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """An engine on the same SQLite file whose transactions hold DDL too, with foreign keys off (Alembic's advice
    for batch migrations, which copy tables that others refer to). Python's sqlite3 would commit each ALTER TABLE
    on its own and ignore the pragma inside a transaction, so this engine sets the pragma on connecting and emits
    BEGIN itself (SQLAlchemy's recipe for transactional DDL on pysqlite). BEGIN IMMEDIATE takes the write lock at
    once, waiting out other writers: a deferred BEGIN that reads the version table and then writes fails at once with
    "database is locked" when another process migrates the same new file (SQLite's deadlock avoidance)."""
    migrating = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(migrating, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_S * 1000}")

    @event.listens_for(migrating, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating
