"""Studies as data: the semi-supervised study and a user's grid file through the same real Ray driver, store and
analysis as Table 1, into real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.db import load_trials
from analysis.export import export_sweep
from analysis.figures import write_figures
from analysis.report import write_report
from analysis.table2.table import best_settings, table2
from ebgan_core.table2.config import LadderConfig
from sweeps.driver import run_sweep
from sweeps.grid_file import load_grid_file
from sweeps.settings import SweepSettings
from sweeps.store.result_store import ResultStore
from sweeps.studies import in_seeded_random_order, in_seeded_random_rounds, pack_groups, study_of_grid
from sweeps.table1.grids import grid
from sweeps.table2.grids import LADDER_PROFILES, ladder_grid

REPO = Path(__file__).resolve().parent.parent


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def test_table2_grids_have_the_papers_settings():
    ln = ladder_grid("ln", "paper", seeds=[0])
    assert len(ln) == 20 * 3 and {c.labels for c in ln} == {100, 200, 1000}
    assert {(c.recon_weight, c.lr) for c in ln} == {(w, lr) for w in (5000, 2000, 1000, 500)
                                                    for lr in (0.002, 0.001, 0.0005, 0.0002, 0.0001)}
    assert all((c.steps, c.decay_start, c.width_divisor) == (120_000, 80_000, 1) for c in ln)
    (ebgan,) = ladder_grid("ebgan-ln", "paper", seeds=[0])[:1]
    assert (ebgan.steps, ebgan.decay_start, ebgan.margin_decay_steps, ebgan.margin) == (180_000, 120_000, 60_000, 16)
    assert (ebgan.lr, ebgan.lr_g, ebgan.recon_weight) == (0.0005, 0.00025, 1000)
    assert len(ladder_grid("table2", "paper")) == 3 * 3 * 15  # LN, EBGAN-LN, MLP x labels x 15 seeds
    cpu = ladder_grid("table2", "cpu")
    assert {c.steps for c in cpu} == {round(120_000 * LADDER_PROFILES["cpu"].length_scale),
                                      round(180_000 * LADDER_PROFILES["cpu"].length_scale)}


def test_ln_and_mlp_members_share_a_group_and_ebgan_ln_trains_apart():
    groups = pack_groups(ladder_grid("table2", "smoke"), max_members=24)
    assert sorted(sorted(c.family for c in g) for g in groups) == [["ebgan-ln"], ["ln", "mlp"]]
    assert groups[0][0].family == "ebgan-ln", "the costliest group starts first"


def test_groups_run_in_a_seeded_random_order_that_a_rerun_keeps_whatever_is_stored():
    configs = grid("all", "laptop-balanced")
    groups = pack_groups(configs, max_members=24)
    ordered = in_seeded_random_order(groups, "sweep-a")
    keys = [g[0].group_key() for g in ordered]
    assert sorted(map(repr, keys)) == sorted(repr(g[0].group_key()) for g in groups), "a permutation of the groups"
    assert keys != [g[0].group_key() for g in groups], "not the costliest-first order"
    assert [g[0].group_key() for g in in_seeded_random_order(groups, "sweep-b")] != keys, "the seed is the sweep"
    # A rerun packs only what is not stored yet; the groups left keep their relative order.
    left = [c for i, c in enumerate(configs) if i % 3]
    rerun = [g[0].group_key() for g in in_seeded_random_order(pack_groups(left, max_members=24), "sweep-a")]
    assert list(dict.fromkeys(rerun)) == [k for k in dict.fromkeys(keys) if k in set(rerun)]


def test_rounds_of_the_random_order_start_their_costliest_groups_first():
    groups = pack_groups(grid("all", "laptop-balanced"), max_members=24)
    random_order = in_seeded_random_order(groups, "sweep-a")
    cost = lambda group: len(group) * sum(c.size_g for c in group)  # noqa: E731
    rounds = in_seeded_random_rounds(groups, "sweep-a", cost, round_size=8)
    assert len(groups) > 16 and len(groups) % 8, "several whole rounds and a last partial one"
    for start in range(0, len(groups), 8):
        chunk, expected = rounds[start:start + 8], random_order[start:start + 8]
        assert sorted(map(id, chunk)) == sorted(map(id, expected)), "a round holds the random order's groups"
        costs = [cost(g) for g in chunk]
        assert costs == sorted(costs, reverse=True), "costliest first within a round"
    assert rounds != random_order


def test_unknown_grids_and_profiles_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown grid 'tabel2'.*table2"):
        study_of_grid("tabel2")
    with pytest.raises(ValueError, match=r"unknown profile 'demo'.*cpu"):
        ladder_grid("table2", "demo")


def test_a_table2_row_keeps_its_config_as_json_and_leaves_table1_columns_empty(tmp_path):
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    sweep = store.open_sweep("t2", "table2", "smoke", "grid", "v", {}, "cpu", {})
    config = LadderConfig(labels=200, seed=3)
    store.record(sweep, [{"study": "table2", "config": config.to_dict(), "status": "completed",
                          "scores": {"test_error": 1.5}, "interim_scores": {10: {"test_error": 9.0}},
                          "code_version": "v", "library_versions": {}}])
    store.close()
    ((study, stored, error, size_g, lr, seed),) = rows(tmp_path / "r.sqlite", "select study, config, test_error, "
                                                       "size_g, lr, seed from trials")
    assert (study, error, size_g, lr, seed) == ("table2", 1.5, None, 0.0002, 3)
    assert LadderConfig.from_dict(json.loads(stored)) == config
    assert rows(tmp_path / "r.sqlite", "select step, test_error from interim_scores") == [(10, 9.0)]
    frame = load_trials(f"sqlite:///{tmp_path / 'r.sqlite'}", study="table2")
    assert list(frame["labels"]) == [200] and list(frame["label"]) == ["LN"]
    assert load_trials(f"sqlite:///{tmp_path / 'r.sqlite'}").empty  # Table 1's analysis sees none of it


def test_table2_picks_each_models_best_setting_and_reports_mean_and_std():
    trials = pd.DataFrame({
        "label": ["LN"] * 4 + ["EBGAN-LN"] * 2, "labels": [100] * 6, "status": ["completed"] * 6,
        "config_hash": ["a", "a", "b", "b", "c", "c"], "test_error": [2.0, 4.0, 1.0, 2.0, 0.5, 1.5]})
    best = best_settings(trials).set_index("label")
    assert best.loc["LN", "config_hash"] == "b" and best.loc["LN", "settings"] == 2
    assert best.loc["LN", "mean"] == 1.5 and best.loc["LN", "std"] == pytest.approx(0.5 ** 0.5)
    table = table2(trials).set_index("model")
    assert table.loc["LN, this run", "100 labels"] == "1.50 ± 0.71 (n=2, best of 2)"
    assert table.loc["EBGAN-LN vs LN, this run: relative improvement; Welch p", "100 labels"].startswith("+33%")
    assert table.loc["EBGAN-LN, the paper", "1000 labels"] == "0.89 ± 0.04"


@pytest.mark.slow
def test_table2_smoke_sweep_stores_test_errors_and_samples_and_its_analysis_runs(ray_address, tmp_path):
    db = tmp_path / "r.sqlite"
    settings = SweepSettings(grid="table2", profile="smoke", db_url=f"sqlite:///{db}",
                             storage_path=str(tmp_path / "ray"), quiet=True, address=ray_address)
    total = len(ladder_grid("table2", "smoke"))
    assert run_sweep(settings) == {"total": total, "stored": total, "new": total, "failed": 0, "remaining": 0}
    stored = rows(db, "select study, family, status, test_error, steps_done from trials order by family")
    assert [s[1] for s in stored] == ["ebgan-ln", "ln", "mlp"]
    assert all(s[0] == "table2" and s[2] == "completed" and 0 <= s[3] <= 100 for s in stored)
    assert rows(db, "select count(*) from samples") == [(1,)]  # EBGAN-LN's generations only
    assert rows(db, "select name, grid, profile from sweeps") == [("table2-smoke", "table2", "smoke")]
    assert run_sweep(settings)["new"] == 0  # resumes: nothing left to train
    printed = subprocess.run([sys.executable, "-m", "analysis.command", "table2", "--db", f"sqlite:///{db}"],
                             capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "profile smoke" in printed and "EBGAN-LN, the paper" in printed and "(n=1)" in printed
    written, _ = write_figures(f"sqlite:///{db}", tmp_path / "figures")
    assert {p.name for p in written} >= {"fig10_ebgan_ln_samples.png", "table2_error_vs_steps.png"}
    page = write_report(f"sqlite:///{db}", tmp_path / "figures", tmp_path / "report.html").read_text()
    assert "Table 2, profile <code>smoke</code>" in page and "fig10_ebgan_ln_samples" in page
    trials_csv, interim_csv = export_sweep(f"sqlite:///{db}", "table2-smoke", tmp_path / "export")
    exported = pd.read_csv(trials_csv)
    assert len(exported) == total and {"labels", "recon_weight", "test_error", "study"} <= set(exported.columns)
    assert "n_layer_g" not in exported.columns  # Table 1's empty columns are left out
    assert pd.read_csv(interim_csv)["test_error"].notna().all()


@pytest.mark.slow
def test_a_user_grid_file_sweeps_queries_and_draws_end_to_end(ray_address, tmp_path):
    grid_file = tmp_path / "lr_by_dropout.toml"
    grid_file.write_text('seeds = [0]\n[base]\nfamily = "ebgan"\nn_layer_g = 2\nsize_g = 25\nn_layer_d = 2\n'
                         'size_d = 8\nsteps = 6\nbatch_size = 16\nscore_samples = 32\n'
                         '[axes]\ndropout_d = [true, false]\nlr = [0.001, 0.01]\n')
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    command = [sys.executable, "sweeps/mnist_grid.py", "--grid", str(grid_file), "--db", db, "--quiet",
               "--storage-path", str(tmp_path / "ray"), "--address", ray_address]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "4/4 configs stored" in result.stdout
    assert rows(tmp_path / "r.sqlite", "select name, grid, profile from sweeps") == [
        ("lr_by_dropout", "lr_by_dropout.toml", "grid-file")]
    assert sorted(rows(tmp_path / "r.sqlite", "select dropout_d, lr from trials")) == [
        (0, 0.001), (0, 0.01), (1, 0.001), (1, 0.01)]
    query = subprocess.run([sys.executable, "-m", "analysis.command", "query", "--db", db, "--where", "dropout_d=true",
                            "--format", "csv", "--columns", "dropout_d,lr,i_prime"], capture_output=True, text=True,
                           cwd=REPO, check=True).stdout.splitlines()
    assert query[0] == "dropout_d,lr,i_prime" and len(query) == 3
    written, _ = write_figures(db, tmp_path / "figures")
    assert any(p.name == "fig2_histograms.png" for p in written)


def test_the_example_grid_file_is_valid():
    spec = load_grid_file(REPO / "results" / "grids" / "margin_by_lr.toml")
    assert spec.study.name == "table1" and len(spec.configs) == 12


@pytest.mark.parametrize("text, message", [
    ("[axes]\nmargni = [1.0]", "axis 'margni' is not a config field of table1"),
    ('study = "table2"\n[axes]\nmargin = [1.0]\nlabels = [15]', "labels must be a multiple of 10"),
    ("[axes]\nlr = 0.1", "axis 'lr' must be a non-empty list"),
    ("[axes\nlr = [0.1]", "not valid TOML"),
    ("seeds = 3", "seeds must be a list of distinct integers"),
    ("seeds = [1, 1]", "seeds must be distinct integers"),
])
def test_bad_grid_files_get_one_line_errors(tmp_path, text, message):
    path = tmp_path / "g.toml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "sweeps/mnist_grid.py", "--grid", str(path), "--db",
                             f"sqlite:///{tmp_path / 'r.sqlite'}"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.sqlite").exists(), "nothing is created before the grid is valid"


def test_ebgan_sweep_is_the_sweep_script_with_its_one_line_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "analysis.command", "sweep", "--grid", "tabel2", "--db",
                             f"sqlite:///{tmp_path / 'r.sqlite'}"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown grid 'tabel2'")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.sqlite").exists()
