"""A full disk mid-sweep: the results folder on a small tmpfs fills up; the sweep stops with one line naming the
problem and the fix, every row stored before stays and the database stays readable, and once space is freed the
same command finishes the sweep."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweeps.table1.grids import grid

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 400 KiB tmpfs (the smoke sweep's database outgrows it after a few groups), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); run the suite as root (CI does)")
    folder = tmp_path / "results"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); a container needs CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_stops_the_sweep_in_one_line_keeps_its_rows_and_the_same_command_finishes(small_disk, tmp_path):
    database = small_disk / "r.sqlite"
    command = [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", "all", "--profile", "smoke",
               "--max-members", "1", "--executor", "local", "--checkpoint-minutes", "0.0001",
               "--db", f"sqlite:///{database}", "--storage-path", str(small_disk / "ray")]
    full = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert full.returncode == 2, full.stdout[-2000:] + full.stderr[-2000:]
    error = full.stderr.strip().splitlines()
    assert len(error) == 1 and "database or disk is full" in error[0] and "fix: free space" in error[0], error
    assert "cannot save its state" in full.stdout and "No space left on device" in full.stdout
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:  # readable, whole, and what was stored stays
        assert db.execute("pragma integrity_check").fetchall() == [("ok",)]
        before = db.execute("select config_hash, seed, status, i_prime, finished_at from trials").fetchall()
    total = len(grid("all", "smoke"))
    assert 1 <= len(before) < total and {row[2] for row in before} == {"completed"}

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    assert f"{len(before)} already stored" in finished.stdout
    with sqlite3.connect(database) as db:
        after = db.execute("select config_hash, seed, status, i_prime, finished_at from trials").fetchall()
        assert db.execute("select count(*) from samples").fetchone() == (total,)
    assert len(after) == total and set(before) <= set(after)
    assert not list((small_disk / "ray").rglob("*.pt")), "checkpoints of the finished sweep were kept"
