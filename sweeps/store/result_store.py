"""Reading and writing the results database (SQLAlchemy 2; SQLite by default, PostgreSQL with the same code): open
or create a sweep, claim it for one driver, upsert trial rows with their samples, curves and interim scores, and read
which configs are stored. Only the sweep driver writes; every write is an idempotent upsert on (sweep_id,
config_hash, seed). The tables are ``sweeps.store.tables``; opening a database first checks it is ours and migrates
it (``sweeps.store.migrations``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, event, false, select
from sqlalchemy.exc import DatabaseError, OperationalError

from ebgan_core.configs import config_from_dict
from sweeps.store.connection import (
    SQLITE_WAIT_S,
    StoreError,
    create_database_engine,
    database_url,
    readonly_sqlite_url,
    sqlite_path,
)
from sweeps.store.migrations import refusal, upgrade_to_newest
from sweeps.store.tables import (
    CONFIG_COLUMNS,
    FINISHED,
    SCORE_COLUMNS,
    STATUSES,
    curves_table,
    interim_samples_table,
    interim_scores_table,
    metadata,
    samples_table,
    sweeps_table,
    trials_table,
)

LISTING_KEY = "images_listing_sha256"  # in a sweep's settings: the image folder listing it trains on (absent: MNIST)


def check_same_data(name: str, stored: str | None, current: str | None) -> None:
    """Refuse (StoreError) to go on with sweep ``name`` on other data than it was trained on: MNIST (None) or an image
    folder's listing."""
    if stored != current:
        was = f"image folder listing {stored[:12]}" if stored else "MNIST"
        now_on = f"listing {current[:12]}" if current else "MNIST"
        raise StoreError(f"sweep {name!r} was trained on {was}, this run on {now_on} (files changed, added or removed, "
                         "or another --images); fix: restore the folder, or choose another --name")


def now() -> datetime:
    return datetime.now(UTC)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_S * 1000}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any, wait_s: float = SQLITE_WAIT_S) -> None:
    """``PRAGMA journal_mode=WAL``, retried for up to ``wait_s``: on a new file that another driver is creating, the
    switch fails at once with "database is locked" (it does not wait out busy_timeout) until that driver commits."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _upsert(table: Table, engine: Engine):
    """The dialect's INSERT that supports ON CONFLICT (SQLite and PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


class ResultStore:
    """Writer side of the results database (the sweep driver only)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        path = sqlite_path(self.url)
        fix = "fix: pass a writable --db URL (or set EBGAN_DB_URL)"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of database {path}: {exc.strerror}; {fix}") from None
            if path.exists() and not os.access(path, os.W_OK):
                raise StoreError(f"database {path} is not writable; {fix}")
        self._refuse_foreign(path)
        self.engine = create_database_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _set_sqlite_pragmas)
        try:
            upgrade_to_newest(self.engine)
        except (DatabaseError, OperationalError) as exc:
            raise self._cannot_open(exc) from None
        self._check_writable()

    def _cannot_open(self, exc: DatabaseError | OperationalError) -> StoreError:
        return StoreError(f"cannot open database {self.url}: {_reason(exc)}; "
                          "fix: move the file away or pass another --db URL")

    def _check_writable(self) -> None:
        """Probe a write to every table and roll it back: a read-only role fails here, before any training."""
        with self.engine.connect() as connection, connection.begin() as transaction:
            try:
                for table in metadata.sorted_tables:
                    key = next(iter(table.primary_key.columns))
                    connection.execute(table.update().where(false()).values({key.name: key}))
                    connection.execute(table.insert().from_select([key.name], select(key).where(false())))
            except (DatabaseError, OperationalError) as exc:
                raise StoreError(f"cannot write database {self.url}: {_reason(exc)}; "
                                 "fix: pass a --db URL whose user may write it (or set EBGAN_DB_URL)") from None
            finally:
                transaction.rollback()

    def _refuse_foreign(self, path: Path | None) -> None:
        """Refuse a database that is not ours, before anything touches it (a SQLite file is opened read-only)."""
        if path is not None and not path.exists():
            return
        engine = (create_database_engine(readonly_sqlite_url(path), connect_args={"timeout": SQLITE_WAIT_S})
                  if path is not None else create_database_engine(self.url))  # waits, as the writer does
        try:
            problem = refusal(engine)
        except (DatabaseError, OperationalError) as exc:
            raise self._cannot_open(exc) from None
        finally:
            engine.dispose()
        if problem:
            raise StoreError(f"refusing database {self.url}: {problem}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open_sweep(self, name: str, grid: str, profile: str, search: str, code_version: str,
                   library_versions: dict[str, str], device: str, settings: dict[str, Any]) -> int:
        """Create the sweep row or return the existing one's id (a rerun resumes it); grid, profile and data (MNIST,
        or the listing of an image folder: ``LISTING_KEY`` in ``settings``) must match."""
        with self.engine.begin() as connection:
            row = connection.execute(select(sweeps_table).where(sweeps_table.c.name == name)).mappings().first()
            if row is not None:
                if (row["grid"], row["profile"], row["search"]) != (grid, profile, search):
                    raise StoreError(
                        f"sweep {name!r} exists with grid={row['grid']} profile={row['profile']} "
                        f"search={row['search']}; fix: rerun with those, or choose another --name")
                check_same_data(name, json.loads(row["settings"]).get(LISTING_KEY), settings.get(LISTING_KEY))
                connection.execute(sweeps_table.update().where(sweeps_table.c.id == row["id"]).values(
                    updated_at=now(), code_version=code_version, library_versions=json.dumps(library_versions)))
                return int(row["id"])
            stamp = now()
            result = connection.execute(sweeps_table.insert().values(
                name=name, grid=grid, profile=profile, search=search, code_version=code_version,
                library_versions=json.dumps(library_versions), device=device, settings=json.dumps(settings),
                created_at=stamp, updated_at=stamp))
            return int(result.inserted_primary_key[0])

    def stored_listing(self, name: str) -> tuple[bool, str | None]:
        """Whether sweep ``name`` exists, and the image folder listing it trains on (None: MNIST)."""
        with self.engine.connect() as connection:
            settings = connection.execute(select(sweeps_table.c.settings).where(sweeps_table.c.name == name)).scalar()
        return settings is not None, None if settings is None else json.loads(settings).get(LISTING_KEY)

    def set_total(self, sweep_id: int, total: int) -> None:
        """Record how many configs the whole sweep has (its grid x seeds, or an adaptive search's trials)."""
        with self.engine.begin() as connection:
            connection.execute(sweeps_table.update().where(sweeps_table.c.id == sweep_id).values(total_configs=total))

    def claim_sweep(self, sweep_id: int, driver: str, lease_s: float) -> None:
        """Mark ``driver`` (host:pid) as the one running the sweep; refuse if another driver holds it. A holder
        whose heartbeat is older than ``lease_s``, or whose process is gone from this host, has lost it."""
        column = sweeps_table.c
        with self.engine.begin() as connection:
            name, holder, seen = connection.execute(
                select(column.name, column.driver, column.driver_seen_at).where(column.id == sweep_id)).one()
            stamp = now()
            age = None if seen is None else (stamp - _utc(seen)).total_seconds()
            if holder not in (None, driver) and age is not None and age < lease_s and _driver_alive(holder):
                raise StoreError(f"sweep {name!r} is being run by another driver ({holder}, seen {age:.0f} s ago); "
                                 f"fix: wait for it to finish (or {lease_s:.0f} s after it stopped), or pass --name "
                                 "for a sweep of your own")
            held = column.driver.is_(None) if holder is None else column.driver == holder
            claimed = connection.execute(sweeps_table.update().where(column.id == sweep_id, held).values(
                driver=driver, driver_seen_at=stamp))
            if claimed.rowcount != 1:
                raise StoreError(f"sweep {name!r} was claimed by another driver just now; fix: wait for it to finish, "
                                 "or pass --name for a sweep of your own")

    def renew_claim(self, sweep_id: int, driver: str) -> None:
        """The driver's heartbeat."""
        with self.engine.begin() as connection:
            connection.execute(sweeps_table.update().where(
                sweeps_table.c.id == sweep_id, sweeps_table.c.driver == driver).values(driver_seen_at=now()))

    def release_sweep(self, sweep_id: int, driver: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(sweeps_table.update().where(
                sweeps_table.c.id == sweep_id, sweeps_table.c.driver == driver).values(driver=None,
                                                                                       driver_seen_at=None))

    def trial_keys(self, sweep_id: int, statuses: tuple[str, ...] = FINISHED) -> set[tuple[str, int]]:
        """(config_hash, seed) of the sweep's trials with these statuses (default: those that need no rerun)."""
        query = select(trials_table.c.config_hash, trials_table.c.seed).where(
            trials_table.c.sweep_id == sweep_id, trials_table.c.status.in_(statuses))
        with self.engine.connect() as connection:
            return {(h, s) for h, s in connection.execute(query)}

    def completed_configs(self, sweep: str) -> list[tuple[dict[str, Any], dict[str, float | None]]]:
        """Each completed trial of the sweep named ``sweep`` as (its whole config, its scores); a sweep of that name
        that does not exist is a ``StoreError``."""
        with self.engine.connect() as connection:
            sweep_id = connection.execute(select(sweeps_table.c.id).where(sweeps_table.c.name == sweep)).scalar()
            if sweep_id is None:
                raise StoreError(f"no sweep named {sweep!r} in {self.url}; fix: name a stored sweep (ebgan query lists "
                                 "them) or pass its --db")
            rows = connection.execute(select(trials_table).where(
                trials_table.c.sweep_id == sweep_id, trials_table.c.status == "completed")).mappings().all()
        return [(json.loads(row["config"]), {name: row[name] for name in SCORE_COLUMNS}) for row in rows
                if row["config"] is not None]

    def record(self, sweep_id: int, rows: Iterable[dict[str, Any]]) -> int:
        """Upsert trial rows (each: a ``config`` dict, ``status`` and results; see ``trial_row``; ``png``: the final
        sample grid, ``interim_pngs``: {step: PNG} along training), all or none; returns the count. A database
        that cannot take them (a full disk, a lost server) is a ``StoreError`` naming the fix; rows stored before
        stay as they were."""
        try:
            return self._record(sweep_id, rows)
        except (DatabaseError, OperationalError) as exc:
            raise StoreError(f"cannot store results in {self.url}: {_reason(exc).strip().splitlines()[0]}; fix: free "
                             "space on its disk (or bring its server back), then run the same command again: the "
                             "rows stored so far are kept and it resumes") from None

    def _record(self, sweep_id: int, rows: Iterable[dict[str, Any]]) -> int:
        count = 0
        with self.engine.begin() as connection:
            for row in rows:
                values = trial_row(sweep_id, row)
                statement = _upsert(trials_table, self.engine).values(**values)
                statement = statement.on_conflict_do_update(
                    index_elements=["sweep_id", "config_hash", "seed"],
                    set_={k: statement.excluded[k] for k in values if k not in ("sweep_id", "config_hash", "seed")})
                connection.execute(statement)
                trial_id = connection.execute(select(trials_table.c.id).where(
                    trials_table.c.sweep_id == sweep_id, trials_table.c.config_hash == values["config_hash"],
                    trials_table.c.seed == values["seed"])).scalar_one()
                curves = json.dumps(row["curves"]) if row.get("curves") else None
                for table, column, value in ((samples_table, "png", row.get("png")), (curves_table, "curves", curves)):
                    if value is None:
                        connection.execute(table.delete().where(table.c.trial_id == trial_id))
                        continue
                    insert = _upsert(table, self.engine).values(trial_id=trial_id, **{column: value})
                    connection.execute(insert.on_conflict_do_update(index_elements=["trial_id"],
                                                                    set_={column: insert.excluded[column]}))
                _replace_steps(connection, interim_scores_table, trial_id, {
                    step: {name: scores.get(name) for name in (*SCORE_COLUMNS, "classes_present", "n_samples")}
                    for step, scores in (row.get("interim_scores") or {}).items()})
                _replace_steps(connection, interim_samples_table, trial_id,
                               {step: {"png": png} for step, png in (row.get("interim_pngs") or {}).items()})
                count += 1
        return count


def _replace_steps(connection: Connection, table: Table, trial_id: int, values: dict[int, dict[str, Any]]) -> None:
    """Replace a trial's rows of a per-step table (``interim_scores``, ``interim_samples``) by ``values``."""
    connection.execute(table.delete().where(table.c.trial_id == trial_id))
    if values:
        connection.execute(table.insert(), [{"trial_id": trial_id, "step": int(step), **columns}
                                            for step, columns in values.items()])


def _utc(stamp: datetime) -> datetime:
    """SQLite hands back timestamps without their zone; ours are all UTC."""
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _driver_alive(driver: str) -> bool:
    """Whether the driver ``host:pid`` may still run: its process exists, or it is on another host (unknowable)."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def _reason(exc: DatabaseError | OperationalError) -> str:
    return str(exc.orig) if getattr(exc, "orig", None) else str(exc)


def trial_row(sweep_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """Column values of one trial from a result row (study, config dict, status, scores, timings, provenance)."""
    study = row.get("study", "table1")
    config = config_from_dict(study, row["config"])
    status = row["status"]
    if status not in STATUSES:
        raise ValueError(f"unknown trial status {status!r}; use one of {', '.join(STATUSES)}")
    scores = row.get("scores") or {}
    values = {
        "sweep_id": sweep_id, "config_hash": config.config_hash(), "study": study,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        **{k: v for k, v in config.to_dict().items() if k in CONFIG_COLUMNS}, "status": status,
        **{name: scores.get(name) for name in SCORE_COLUMNS},
        "classes_present": scores.get("classes_present"),
        "class_histogram": json.dumps(scores["class_histogram"]) if "class_histogram" in scores else None,
        "n_samples": scores.get("n_samples"),
        "steps_done": row.get("steps"), "diverged_at_step": row.get("diverged_at_step"),
        "resumed_from_step": row.get("resumed_from_step"),
        "seconds": row.get("seconds"), "group_seconds": row.get("group_seconds"), "group_size": row.get("group_size"),
        "error": row.get("error"), "search": row.get("search", "grid"), "device": row.get("device"),
        "judge_sha256": row.get("judge_sha256"), "code_version": row["code_version"],
        "library_versions": json.dumps(row["library_versions"]),
        "started_at": row.get("started_at"), "finished_at": row.get("finished_at") or now(),
    }
    return values
