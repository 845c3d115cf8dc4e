"""The results database's address: its URL (``--db``, ``$EBGAN_DB_URL`` or the default SQLite file) and engines for
it, read-only where asked. Shared by the writer (``sweeps.store.result_store``) and the reader (``analysis``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import ArgumentError

DEFAULT_DB_URL = "sqlite:///results/ebgan.sqlite"
DB_URL_ENV = "EBGAN_DB_URL"
DB_HELP = f"database URL, SQLite or PostgreSQL (default: ${DB_URL_ENV}, else {DEFAULT_DB_URL})"
SQLITE_WAIT_S = 30  # how long a SQLite connection waits for another process's write lock (busy_timeout)


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the fix."""


class DatabaseUrlError(StoreError):
    """A database URL that cannot be used (malformed, or its driver is missing); the message names the fix."""


def database_url(url: str | None = None) -> str:
    """``url``, else ``$EBGAN_DB_URL``, else ``sqlite:///results/ebgan.sqlite``."""
    return url or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def engine_url(url: str) -> str:
    """The SQLAlchemy URL to connect with: plain ``postgresql://`` (or ``postgres://``) means psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_database_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; a missing PostgreSQL driver or a malformed URL is a DatabaseUrlError naming the fix."""
    try:
        return create_engine(engine_url(url), **options)
    except (ImportError, ArgumentError) as exc:
        if isinstance(exc, ImportError) and "psycopg" in str(exc):
            raise DatabaseUrlError("PostgreSQL needs the psycopg driver, which is not installed; fix: pip install "
                                   "'ebgan-sweep[postgres]' (psycopg 3), or use a sqlite:/// URL") from None
        raise DatabaseUrlError(f"bad database URL {url!r} ({exc}); fix: pass a valid --db URL") from None


def readonly_sqlite_url(path: Path) -> str:
    """A URL that opens the SQLite file at ``path`` read-only: nothing, not even a pragma, can change it."""
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) and url != prefix + ":memory:" else None
