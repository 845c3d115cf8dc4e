"""Results databases for tests: a real, throwaway PostgreSQL server (Debian's server binaries, 127.0.0.1 only,
stopped afterwards), and reading any results URL."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import inspect, text

from sweeps.store.connection import create_database_engine

PG_BIN = Path(os.environ.get("EBGAN_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing_reason() -> str | None:
    """Why no server can be started here (None if one can)."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        return (f"PostgreSQL server binaries not found in {PG_BIN} (Debian: apt-get install postgresql-15; "
                "or set EBGAN_PG_BIN)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root and runuser is missing: initdb refuses root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on 127.0.0.1 (as ``nobody`` when run as root: initdb refuses root); yield its URL."""
    folder = Path(tempfile.mkdtemp(prefix="ebgan-pg-"))  # under /tmp, so that nobody can reach it
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    port, data = _free_port(), folder / "data"
    pg_ctl = [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "ebgan", "--auth=trust",
                        "-E", "UTF8"], check=True, capture_output=True)
        subprocess.run([*pg_ctl, "-l", str(folder / "server.log"), "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}", "start"], check=True,
                       capture_output=True)
        try:
            yield f"postgresql://ebgan@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def query(url: str, sql: str) -> list[tuple]:
    """Rows of ``sql``, or [] while the sweep has not created its tables yet."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    engine = create_database_engine(url)
    try:
        if not inspect(engine).has_table("trials"):
            return []
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql))]
    finally:
        engine.dispose()
