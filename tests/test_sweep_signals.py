"""A sweep's driver killed, stopped by SIGTERM, or racing a second driver, on real Ray and real databases: it resumes to
exactly one row per config, stops cleanly, and lets one driver run a sweep at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from database_servers import query

from sweeps.table1.grids import grid

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SMOKE_TOTAL = len(grid("all", "smoke"))


def test_killed_sweep_resumes_with_exactly_one_row_per_config_then_query_and_figures_read_it(results_url,
                                                                                              ray_address, tmp_path):
    """On SQLite the driver is killed with the local Ray it started (a closed laptop); on PostgreSQL it had joined the
    tests' shared Ray and is killed alone (a cluster user's lost driver: Ray ends its trials). Both resume on the
    shared Ray."""
    command = [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", "all", "--profile", "smoke",
               "--max-members", "1", "--db", results_url, "--name", "killed"]
    on_cluster = [] if results_url.startswith("sqlite") else ["--address", ray_address]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen([*command, *on_cluster], cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and len(query(results_url, "select id from trials")) < 2:
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and any local Ray it started, mid-sweep
        driver.wait()
    stored = "select config_hash, seed, finished_at from trials"
    before = query(results_url, stored)
    assert 2 <= len(before) < SMOKE_TOTAL, "killed before the end"
    resumed = subprocess.run([*command, "--address", ray_address], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(before)} already stored" in resumed.stdout
    after = query(results_url, stored)
    assert len(after) == len(set((h, s) for h, s, _ in after)) == SMOKE_TOTAL
    assert set(before) <= set(after), "rows stored before the kill are kept as they were, not redone"
    assert query(results_url, "select count(*) from trials where status != 'completed'") == [(0,)]
    ebgan = str(Path(sys.executable).parent / "ebgan")
    listed = subprocess.run([ebgan, "query", "--db", results_url, "--top", "0", "--format", "csv"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert len(listed.stdout.strip().splitlines()) == SMOKE_TOTAL + 1  # header + one line per config
    drawn = subprocess.run([ebgan, "figures", "--db", results_url, "--out", str(tmp_path / "figures")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert (tmp_path / "figures" / "fig2_histograms.png").is_file()


def margin_sweep_running(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen, list[str], str]:
    """Fig. 9's 7 margins at demo size, one config per group (each trains a second or two, so a signal or a kill
    lands mid-group), started as a CLI driver in its own session and waited for until its first row is stored."""
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    command = [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", "margin", "--profile", "demo",
               "--max-members", "1", "--db", url, *flags]
    driver = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(query(url, "select id from trials")) < 1:
        time.sleep(0.2)
    return driver, command, url


def test_a_second_driver_on_a_running_sweep_is_refused_and_the_first_finishes_alone(ray_address, tmp_path):
    first, command, url = margin_sweep_running(tmp_path, "--address", ray_address)
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output, _ = first.communicate(timeout=600)
    assert second.returncode == 2 and "is being run by another driver" in second.stderr, second.stderr[-2000:]
    assert len(second.stderr.strip().splitlines()) == 1
    assert first.returncode == 0, output[-3000:]
    stored = query(url, "select config_hash, seed, status from trials")
    assert len(stored) == len({(h, s) for h, s, _ in stored}) == len(grid("margin"))
    assert query(url, "select driver from sweeps") == [(None,)]  # released at the end


def test_sigterm_stops_a_sweep_cleanly_and_the_same_command_resumes_it(ray_address, tmp_path):
    """SIGTERM (a scheduler's stop) is relayed as Ctrl+C's SIGINT, so this covers both. The stopped driver started
    its own Ray, which must end with it; the resume joins the tests' shared Ray."""
    driver, command, url = margin_sweep_running(tmp_path)
    driver.send_signal(signal.SIGTERM)  # the driver alone
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 1 and "the same command again retries them" in output, output[-3000:]
    stored = query(url, "select status from trials")
    assert 1 <= len(stored) < len(grid("margin")) and set(stored) == {("completed",)}
    assert query(url, "select driver from sweeps") == [(None,)]
    time.sleep(2)
    assert subprocess.run(["pgrep", "-s", str(driver.pid)], capture_output=True).stdout == b"", "Ray left running"
    resumed = subprocess.run([*command, "--address", ray_address], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert len(query(url, "select id from trials where status = 'completed'")) == len(grid("margin"))
