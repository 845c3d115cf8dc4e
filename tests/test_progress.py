"""`ebgan status` and the "N of M configs" of figures and report, from a real SQLite store; `ebgan import` of a
committed export."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from analysis.db import load_interim_scores, load_trials
from analysis.progress import completeness_note, status_table, sweep_progress
from ebgan_core.table1.config import TrialConfig
from sweeps.group_checkpoints import PROGRESS_SUFFIX, GroupCheckpoints
from sweeps.lease import DRIVER, LEASE_S
from sweeps.store.import_export import import_export
from sweeps.store.result_store import ResultStore

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference" / "all-laptop-balanced_trials.csv"


def _row(seed: int, status: str, finished: datetime) -> dict:
    return {"config": TrialConfig(seed=seed).to_dict(), "status": status, "steps": 3, "code_version": "test",
            "scores": {"i_prime": 1.0} if status == "completed" else {}, "library_versions": {"torch": "x"},
            "finished_at": finished}


def test_status_counts_a_running_sweep_and_projects_its_end(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = ResultStore(url)
    sweep = store.open_sweep("running", "ebgan", "smoke", "grid", "test", {"torch": "x"}, "cpu",
                             {"storage_path": str(tmp_path / "ray")})
    store.set_total(sweep, 10)
    start = datetime.now(UTC) - timedelta(minutes=3)
    store.record(sweep, [_row(0, "completed", start), _row(1, "diverged", start + timedelta(minutes=1)),
                         _row(2, "completed", start + timedelta(minutes=2)), _row(3, "failed", start)])
    store.claim_sweep(sweep, DRIVER, LEASE_S)
    stopped = store.open_sweep("stopped", "ebgan", "smoke", "grid", "test", {"torch": "x"}, "cpu", {})
    store.set_total(stopped, 2)
    store.record(stopped, [_row(0, "completed", start)])
    store.close()
    # A group of 3 training now, as its worker's progress file says; a file not rewritten for long is of none.
    checkpoints = GroupCheckpoints(str(tmp_path / "ray"), "running", "test", 60.0)
    checkpoints.progress_file([TrialConfig(seed=s) for s in range(3)])(5, 10)
    stale = Path(checkpoints.folder) / f"stale{PROGRESS_SUFFIX}"
    stale.write_text(json.dumps({"step": 1, "saved": 0, "total": 10, "members": 2, "time": 0.0}))
    progress = sweep_progress(url).set_index("sweep")
    running = progress.loc["running"]
    assert (running["stored"], running["total"], running["failed"], running["diverged"]) == (3, 10, 1, 1)
    assert running["running"] and running["driver"] == DRIVER
    assert abs(running["eta_s"] - 7 * 60) < 1, "7 configs left at one a minute"
    assert not progress.loc["stopped", "running"] and pd.isna(progress.loc["stopped", "eta_s"])
    screen = status_table(sweep_progress(url))
    assert "3 / 10" in screen and DRIVER in screen and "1 / 2" in screen and "none (stopped)" in screen
    assert "1 group (3 members) at 5/10" in screen and screen.count(" at ") == 1
    assert completeness_note(sweep_progress(url)) == ("running: 3 of 10 configs (still running); "
                                                      "stopped: 1 of 2 configs (stopped)")
    shown = subprocess.run([sys.executable, "-m", "analysis.command", "status", "--db", url], capture_output=True,
                           text=True, cwd=REPO, check=True).stdout
    assert "3 / 10" in shown


def test_an_imported_export_holds_the_exports_trials_and_interim_scores(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    name, stored = import_export(REFERENCE, url)
    exported = pd.read_csv(REFERENCE)
    assert (name, stored) == ("all-laptop-balanced", len(exported))
    trials = load_trials(url, name)
    merged = trials.merge(exported, on=["config_hash", "seed"], suffixes=("", "_csv"))
    assert len(merged) == len(exported), "every row under its own config hash: the configs read back intact"
    assert (merged["i_prime"] - merged["i_prime_csv"]).abs().max() < 1e-12
    interim = pd.read_csv(REFERENCE.with_name("all-laptop-balanced_interim_scores.csv"))
    assert len(load_interim_scores(url)) == len(interim)
    assert sweep_progress(url).iloc[0][["stored", "total"]].tolist() == [len(exported), len(exported)]
