"""Whose database is this, and at which schema revision: checked before anything is written; migrated by Alembic.

A database is ebgan-sweep's if it is empty, if its ``ebgan_schema_version`` (Alembic's version table, named as
ours) names a revision of ``sweeps/migrations``,
or if it is one written before migrations existed (only our tables, with our key columns). Anything else (a
foreign ``trials`` table, another application's tables, a revision from a newer ebgan-sweep) is refused with the
file left as it was. Ours is upgraded to the newest revision (``sweeps/migrations/versions``) before use.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "ebgan_schema_version"  # Alembic's version table, named as ours (Optuna has an alembic_version too)
OUR_TABLES = frozenset({"sweeps", "trials", "samples", "curves"})
# Columns that only our tables carry: what marks a database from before migrations as ours.
KEY_COLUMNS = {"sweeps": {"id", "name", "grid", "profile"}, "trials": {"sweep_id", "config_hash", "seed", "status"}}


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the fix."""


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
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
