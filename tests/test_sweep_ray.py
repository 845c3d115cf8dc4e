"""Real local Ray sweeps into real SQLite files: what a sweep stores, a rerun, the local executor, failures, waves, bad
input."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ebgan_core.table1.config import TrialConfig
from sweeps.driver import run_configs, run_sweep
from sweeps.settings import SweepSettings
from sweeps.store.result_store import ResultStore
from sweeps.table1.grids import grid

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SMOKE_TOTAL = len(grid("all", "smoke"))


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


@pytest.fixture(scope="module")
def smoke_db(tmp_path_factory) -> tuple[Path, SweepSettings, dict[str, int], int]:
    """The smoke grid swept on a Ray of its own: its database, settings, counts, and how many result stores the
    driver opened (each a real one, counted as it opens)."""
    folder = tmp_path_factory.mktemp("smoke")
    settings = SweepSettings(grid="all", profile="smoke", db_url=f"sqlite:///{folder / 'r.sqlite'}",
                             storage_path=str(folder / "ray"), quiet=True)
    opened = []
    open_store = ResultStore.__init__

    def counting(store: ResultStore, url: str | None = None) -> None:
        opened.append(url)
        open_store(store, url)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ResultStore, "__init__", counting)
        counts = run_sweep(settings)
    return folder / "r.sqlite", settings, counts, len(opened)


def test_smoke_sweep_stores_every_config_with_scores_samples_and_provenance(smoke_db):
    path, _, counts, _ = smoke_db
    assert counts == {"total": SMOKE_TOTAL, "stored": SMOKE_TOTAL, "new": SMOKE_TOTAL, "failed": 0, "remaining": 0}
    trials = rows(path, "select family, status, i_prime, n_samples, steps_done, code_version, library_versions, "
                        "config_hash, seed, group_size from trials")
    assert len(trials) == SMOKE_TOTAL == len({(t[7], t[8]) for t in trials})
    assert {t[0] for t in trials} == {"ebgan", "gan"} and {t[1] for t in trials} == {"completed"}
    assert all(t[2] is not None and t[3] == 32 and t[4] == 6 and t[5] and '"ray"' in t[6] for t in trials)
    assert max(t[9] for t in trials) > 1, "members of one shape trained as one stacked group"
    assert rows(path, "select count(*) from samples where length(png) > 100") == [(SMOKE_TOTAL,)]
    assert rows(path, "select count(*) from curves") == [(SMOKE_TOTAL,)]
    # The smoke profile scores every 3 of its 6 steps too: one interim row per trial, at step 3.
    assert rows(path, "select step, count(*), min(n_samples) from interim_scores group by step") == [
        (3, SMOKE_TOTAL, 32)]
    assert rows(path, "select name, grid, profile, search from sweeps") == [("all-smoke", "all", "smoke", "grid")]


def test_the_driver_opens_one_result_store_for_the_whole_sweep(smoke_db):
    """Its claim and heartbeat, the stored keys, every group's rows and the final counts share one store (one engine,
    one migration check), not one each."""
    _, _, counts, opened = smoke_db
    assert counts["new"] == SMOKE_TOTAL and opened == 1


def test_rerunning_a_finished_sweep_trains_nothing_and_duplicates_nothing(smoke_db):
    path, settings, _, _ = smoke_db
    before = rows(path, "select id, finished_at from trials order by id")
    assert run_sweep(settings) == {"total": SMOKE_TOTAL, "stored": SMOKE_TOTAL, "new": 0, "failed": 0, "remaining": 0}
    assert rows(path, "select id, finished_at from trials order by id") == before


SCIENCE = ("select t.config_hash, t.seed, t.status, t.i_prime, t.inception_score, t.frechet_distance, "
           "t.classes_present, t.class_histogram, t.steps_done, t.group_size, c.curves, s.png from trials t "
           "join curves c on c.trial_id = t.id left join samples s on s.trial_id = t.id order by 1, 2")
INTERIM = ("select t.config_hash, t.seed, i.step, i.i_prime, i.frechet_distance from interim_scores i "
           "join trials t on t.id = i.trial_id order by 1, 2, 3")


def test_the_local_executor_runs_without_ray_and_stores_the_rays_rows(smoke_db, tmp_path):
    path, _, _, _ = smoke_db
    local = tmp_path / "local.sqlite"
    # A process in which Ray cannot be imported, as on a machine without it.
    code = ("import sys; sys.modules['ray'] = None; from sweeps.mnist_grid import main; "
            f"sys.exit(main(['--grid', 'all', '--profile', 'smoke', '--executor', 'local', '--db', "
            f"'sqlite:///{local}']))")
    # One thread, as the Ray workers of 1 CPU each (the default here): a result depends on the thread count through
    # the order of its sums.
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "in this process (no Ray)" in done.stdout and "[sweep] projected: about" in done.stdout
    assert f"[sweep] done: {SMOKE_TOTAL}/{SMOKE_TOTAL} configs stored" in done.stdout
    assert rows(local, SCIENCE) == rows(path, SCIENCE) and len(rows(local, SCIENCE)) == SMOKE_TOTAL
    assert rows(local, INTERIM) == rows(path, INTERIM)
    again = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600,
                           env=env)
    assert f"{SMOKE_TOTAL} already stored, 0 to run" in again.stdout  # it resumes like any sweep


def test_a_group_that_raises_is_stored_as_failed_and_the_sweep_goes_on(ray_address, tmp_path):
    good = TrialConfig(n_layer_g=2, size_g=16, n_layer_d=2, size_d=8, batch_size=16, steps=3, score_samples=16)
    bad = good.replace(batch_size=70_000)  # larger than the training set: the group raises inside its worker
    settings = SweepSettings(grid="ebgan", profile="smoke", name="faults", db_url=f"sqlite:///{tmp_path / 'r.sqlite'}",
                             storage_path=str(tmp_path / "ray"), quiet=True, address=ray_address)
    counts = run_configs([good, bad], settings)
    assert counts["stored"] == 1 and counts["failed"] == 1 and counts["remaining"] == 1
    stored = dict(rows(tmp_path / "r.sqlite", "select batch_size, status from trials"))
    assert stored == {16: "completed", 70_000: "failed"}
    (error,) = rows(tmp_path / "r.sqlite", "select error from trials where status = 'failed'")[0]
    assert "Traceback" in error and "larger than the 60000 training images" in error


def test_a_group_larger_than_its_memory_budget_trains_in_waves(ray_address, tmp_path):
    config = TrialConfig(n_layer_g=2, size_g=16, n_layer_d=2, size_d=8, batch_size=16, steps=3, score_samples=16)
    configs = [config.replace(lr=lr) for lr in (1e-4, 1e-3, 1e-2)]
    settings = SweepSettings(grid="ebgan", profile="smoke", name="waves", db_url=f"sqlite:///{tmp_path / 'r.sqlite'}",
                             storage_path=str(tmp_path / "ray"), quiet=True, group_memory_gib=1e-6,
                             address=ray_address)
    assert run_configs(configs, settings)["stored"] == 3
    assert rows(tmp_path / "r.sqlite", "select status, group_size from trials") == [("completed", 1)] * 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--grid", "sngan"], "unknown grid 'sngan'"),
        (["--profile", "huge"], "unknown profile 'huge'"),
        (["--address", "127.0.0.1:9"], "cannot reach Ray at 127.0.0.1:9"),
        (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
        (["--group-memory-gib", "0"], "--group-memory-gib must be > 0"),
        (["--retries", "-1"], "--retries must be >= 0"),
    ],
)
def test_bad_input_is_one_line_before_any_training(flags, message, tmp_path):
    db = tmp_path / "r.sqlite"
    result = subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--profile", "smoke",
                             "--db", f"sqlite:///{db}", *flags], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if db.exists():
        assert rows(db, "select count(*) from trials") == [(0,)]


def test_corrupt_database_is_refused_before_training_and_kept(tmp_path):
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"not sqlite at all" * 64)
    before = db.read_bytes()
    result = subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--profile", "smoke",
                             "--db", f"sqlite:///{db}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot open database" in result.stderr and "fix:" in result.stderr
    assert db.read_bytes() == before


def test_a_foreign_trials_table_is_refused_before_training_and_left_byte_identical(tmp_path):
    db = tmp_path / "theirs.sqlite"
    with sqlite3.connect(db) as connection:
        connection.execute("create table trials (id integer primary key, name text)")
        connection.execute("insert into trials values (1, 'theirs')")
    connection.close()
    before = db.read_bytes()
    result = subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--profile", "smoke",
                             "--db", f"sqlite:///{db}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().startswith("error: refusing database") and "fix:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]
