"""The results store on a real SQLite file: idempotent upserts, schema, and refusing bad databases."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from database_servers import missing_reason, postgres_server
from sqlalchemy import text

from ebgan_core.table1.config import TrialConfig
from sweeps.store.connection import StoreError, create_database_engine
from sweeps.store.migrations import VERSION_TABLE, downgrade_to, newest_revision
from sweeps.store.result_store import ResultStore
from sweeps.store.tables import metadata

CONFIG = TrialConfig(steps=3, score_samples=10)


def row(status="completed", i_prime=1.5, seed=0, **extra):
    return {"config": CONFIG.replace(seed=seed).to_dict(), "status": status, "steps": 3,
            "scores": {"i_prime": i_prime, "n_samples": 10, "class_histogram": [1] * 10, "classes_present": 10},
            "png": b"\x89PNG fake", "curves": {"loss_d": [1.0, 2.0]}, "code_version": "test",
            "library_versions": {"torch": "x"}, **extra}


def open_sweep(store: ResultStore, name: str = "s") -> int:
    return store.open_sweep(name, "ebgan", "smoke", "grid", "test", {"torch": "x"}, "cpu", {})


def test_upserts_are_idempotent_and_keep_one_row_per_config_and_seed(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    sweep = open_sweep(store)
    store.record(sweep, [row(status="failed", i_prime=None, error="boom")])
    store.record(sweep, [row(), row(seed=1)])
    store.record(sweep, [row(i_prime=2.5)])
    with sqlite3.connect(path) as db:
        rows = db.execute("select seed, status, i_prime, error, config_hash, sweep_id, family from trials "
                          "order by seed").fetchall()
        assert rows == [(0, "completed", 2.5, None, CONFIG.config_hash(), sweep, "ebgan"),
                        (1, "completed", 1.5, None, CONFIG.config_hash(), sweep, "ebgan")]
        assert db.execute("select count(*) from samples").fetchone() == (2,)
        assert db.execute("pragma journal_mode").fetchone() == ("wal",)
    assert store.trial_keys(sweep) == {(CONFIG.config_hash(), 0), (CONFIG.config_hash(), 1)}
    assert open_sweep(store) == sweep  # reopening by name resumes the same sweep


def test_failed_trials_are_not_finished_and_a_reused_name_must_match(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    sweep = open_sweep(store)
    store.record(sweep, [row(status="failed", i_prime=None, error="Traceback ...")])
    assert store.trial_keys(sweep) == set()
    with pytest.raises(StoreError, match="sweep 's' exists with grid=ebgan profile=smoke"):
        store.open_sweep("s", "gan", "smoke", "grid", "test", {}, "cpu", {})


def test_corrupt_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"cannot open database .*fix: move the file away"):
        ResultStore(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_database_in_an_impossible_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder of database"):
        ResultStore(f"sqlite:///{blocker}/sub/r.sqlite")


def test_two_precisions_of_one_config_are_two_trials_with_their_precision_stored(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    sweep = open_sweep(store)
    bf16 = {**row(), "config": CONFIG.replace(precision="bf16").to_dict()}
    store.record(sweep, [row(), bf16])
    with sqlite3.connect(path) as db:
        stored = db.execute("select precision, config_hash from trials order by precision").fetchall()
    assert stored == [("bf16", CONFIG.replace(precision="bf16").config_hash()), ("fp32", CONFIG.config_hash())]


def test_a_database_from_before_migrations_and_precision_opens_with_its_rows_and_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    store.record(open_sweep(store), [row()])
    store.close()
    with sqlite3.connect(path) as db:  # as the code before migrations and before precision left it
        db.execute("alter table trials drop column precision")
        db.execute("alter table trials drop column resumed_from_step")
        for column in ("study", "config", "test_error", "penalty_weight", "clip", "began_gamma", "began_lambda_k",
                       "disc_iters", "batch_norm_d", "architecture", "image_size", "width", "channels", "dataset",
                       "generator"):
            db.execute(f"alter table trials drop column {column}")
        db.execute("drop table interim_scores")
        db.execute("drop table interim_samples")
        db.execute("alter table sweeps drop column total_configs")
        db.execute("alter table sweeps drop column driver")
        db.execute("alter table sweeps drop column driver_seen_at")
        db.execute("drop table ebgan_schema_version")
    ResultStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("select precision, i_prime from trials").fetchall() == [("fp32", 1.5)]
        assert db.execute("select version_num from ebgan_schema_version").fetchall() == [(newest_revision(),)]
        assert db.execute("select driver from sweeps").fetchall() == [(None,)]
        assert db.execute("select resumed_from_step from trials").fetchall() == [(None,)]


def test_the_migrations_build_exactly_the_schema_the_code_writes(tmp_path):
    """A new config field (a new trials column) without a migration fails here."""
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    store.close()


def foreign_sqlite(path: Path, *statements: str) -> bytes:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (["create table trials (id integer primary key, name text)", "insert into trials values (1, 'theirs')"],
         "tables ebgan-sweep did not make (trials)"),
        (["create table users (id integer primary key)"], "tables ebgan-sweep did not make (users)"),
        (["create table ebgan_schema_version (version_num varchar(32) primary key)",
          "insert into ebgan_schema_version values ('ebgan_9999')"], "schema revision 'ebgan_9999' is unknown"),
        (["create table alembic_version (version_num varchar(32) primary key)",
          "insert into alembic_version values ('abc123')"], "tables ebgan-sweep did not make (alembic_version)"),
    ],
)
def test_a_database_that_is_not_ours_is_refused_and_left_byte_identical(statements, message, tmp_path):
    path = tmp_path / "theirs.sqlite"
    before = foreign_sqlite(path, *statements)
    with pytest.raises(StoreError, match="fix: ") as refused:
        ResultStore(f"sqlite:///{path}")
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]  # no WAL or journal files either


def test_a_postgresql_url_without_its_driver_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(StoreError, match=r"pip install 'ebgan-sweep\[postgres\]'"):
        ResultStore("postgresql://user@127.0.0.1:9/results")


def test_postgresql_store_migrates_and_refuses_a_role_that_cannot_write_before_any_training():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        ResultStore(url).close()  # the owner creates the schema
        engine = create_database_engine(url)
        with engine.begin() as connection:
            connection.execute(text("create role reader login"))
            connection.execute(text("grant select on all tables in schema public to reader"))
        engine.dispose()
        with pytest.raises(StoreError, match=r"cannot write database .*fix: pass a --db URL whose user may write"):
            ResultStore(url.replace("ebgan@", "reader@"))


def test_one_driver_at_a_time_holds_a_sweep_until_it_releases_dies_or_goes_silent(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    sweep = open_sweep(store)
    here = socket.gethostname()
    store.claim_sweep(sweep, f"{here}:{os.getpid()}", lease_s=300)
    store.claim_sweep(sweep, f"{here}:{os.getpid()}", lease_s=300)  # its own claim again: fine
    with pytest.raises(StoreError, match=r"being run by another driver .*fix: wait for it"):
        store.claim_sweep(sweep, "elsewhere:1", lease_s=300)
    store.claim_sweep(sweep, "elsewhere:1", lease_s=0)  # a holder silent for longer than the lease has lost it
    with pytest.raises(StoreError, match="being run by another driver"):
        store.claim_sweep(sweep, f"{here}:{os.getpid()}", lease_s=300)  # another host cannot be checked: the lease
    store.release_sweep(sweep, "elsewhere:1")
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.claim_sweep(sweep, f"{here}:{finished.stdout.strip()}", lease_s=300)
    store.claim_sweep(sweep, f"{here}:{os.getpid()}", lease_s=300)  # a holder on this host whose process is gone
    store.close()


def test_a_database_at_an_older_revision_is_migrated_with_its_rows(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    store.record(open_sweep(store), [row()])
    downgrade_to(store.engine, "ebgan_0001")  # back to the first revision, as an older ebgan-sweep left it
    store.close()
    with sqlite3.connect(path) as db:
        assert "driver" not in {r[1] for r in db.execute("pragma table_info(sweeps)")}
        assert "resumed_from_step" not in {r[1] for r in db.execute("pragma table_info(trials)")}
        assert db.execute("select name from sqlite_master where name = 'interim_scores'").fetchall() == []
    ResultStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("select version_num from ebgan_schema_version").fetchall() == [(newest_revision(),)]
        assert "driver" in {r[1] for r in db.execute("pragma table_info(sweeps)")}
        assert "resumed_from_step" in {r[1] for r in db.execute("pragma table_info(trials)")}
        assert db.execute("select count(*) from interim_scores").fetchall() == [(0,)]
        assert db.execute("select seed, i_prime from trials").fetchall() == [(0, 1.5)]
        assert db.execute("select study, config from trials").fetchall() == [("table1", None)]


def test_interim_scores_are_stored_per_step_and_replaced_when_a_trial_is_stored_again(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    sweep = open_sweep(store)
    early = {1: {"i_prime": 0.5, "n_samples": 10, "classes_present": 4}, 2: {"i_prime": 0.9, "n_samples": 10}}
    store.record(sweep, [row(interim_scores=early)])
    with sqlite3.connect(path) as db:
        assert db.execute("select step, i_prime, classes_present from interim_scores order by step").fetchall() == [
            (1, 0.5, 4), (2, 0.9, None)]
    store.record(sweep, [row(interim_scores={2: {"i_prime": 1.1}})])
    with sqlite3.connect(path) as db:
        assert db.execute("select step, i_prime from interim_scores").fetchall() == [(2, 1.1)]
    store.close()


def test_a_migration_that_fails_midway_leaves_the_database_as_it_was(tmp_path):
    """SQLite's DDL joins the migration's transaction (Python's sqlite3 would commit each ALTER TABLE at once)."""
    path = tmp_path / "r.sqlite"
    store = ResultStore(f"sqlite:///{path}")
    store.record(open_sweep(store), [row()])
    downgrade_to(store.engine, "ebgan_0004")
    store.close()
    with sqlite3.connect(path) as db:  # makes ebgan_0005's batch step fail after its first ALTER TABLEs
        db.execute("create table _alembic_tmp_trials (x integer)")
        before = [r[1] for r in db.execute("pragma table_info(trials)")]
    with pytest.raises(StoreError, match="_alembic_tmp_trials"):
        ResultStore(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        assert [r[1] for r in db.execute("pragma table_info(trials)")] == before and "study" not in before
        assert db.execute("select version_num from ebgan_schema_version").fetchall() == [("ebgan_0004",)]
        assert db.execute("select seed, i_prime from trials").fetchall() == [(0, 1.5)]


OPEN_AT = """
import sys, time
from sweeps.store.result_store import ResultStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
ResultStore(sys.argv[1]).close()
"""


def test_drivers_opening_one_new_database_at_the_same_moment_all_open_it(results_url):
    # Two studies' drivers started together on a fresh database (make chaos does): each migrates it or waits for the
    # one that does. A deferred SQLite transaction failed at once with "database is locked" here.
    at = f"{time.time() + 3:.3f}"  # after the interpreters' start-up, so that the opens coincide
    openers = [subprocess.Popen([sys.executable, "-c", OPEN_AT, results_url, at], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 4, "\n".join(errors)
    store = ResultStore(results_url)
    assert store.open_sweep("s", "gan", "smoke", "grid", "v", {}, "cpu", {}) == 1
    store.close()
