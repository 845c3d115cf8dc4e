"""Lucic et al.'s study as data: the seeded sampler of every loss's settings, phase 1 (`--grid lucic --samples N`) on
both executors, phase 3 (`--best-of SWEEP`), and the study's figures, report section, explore axes and query."""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ebgan_core.table1.families import FAMILIES
from sweeps.table1 import lucic
from sweeps.table1.grids import grid

REPO = Path(__file__).resolve().parent.parent
EBGAN = str(Path(sys.executable).parent / "ebgan")
LOSSES = {"NS-GAN", "MM-GAN", "LSGAN", "WGAN", "WGAN-GP", "DRAGAN", "BEGAN", "Hinge", "EBGAN", "EBGAN-PT"}


def test_every_loss_is_sampled_within_its_ranges_from_seeds_of_its_own():
    rows = lucic.rows(30)
    by_loss = {loss: [r for r in rows if lucic.loss_of({"pt_weight": 0.0, **r}) == loss] for loss in LOSSES}
    assert {loss: len(samples) for loss, samples in by_loss.items()} == dict.fromkeys(LOSSES, 30)
    for row in rows:
        assert 0 <= row["adam_beta1"] < 1 and 1e-5 <= row["lr"] <= 1e-2
        assert row["disc_iters"] in range(1, 6) and row["batch_norm_d"] in (True, False)
    for loss, _, ranges in lucic.losses():
        for name, (low, high, _) in ranges.items():
            values = [r[name] for r in by_loss[loss]]
            assert low <= min(values) and max(values) <= high, (loss, name)
    assert [r["clip"] for r in by_loss["WGAN"]] != sorted(r["clip"] for r in by_loss["WGAN"])  # drawn, not a sweep
    # The first 10 samples of a 30-sample study are the 10-sample study's; a rerun draws the same configs.
    assert lucic.rows(10) == [r for r in rows if r in lucic.rows(10)] and lucic.rows(10) == lucic.rows(10)
    logs = np.log10([r["lr"] for r in rows])  # log-uniform: about a third of the draws in each decade
    assert all(0.2 < np.mean((logs >= d) & (logs < d + 1)) < 0.47 for d in (-5, -4, -3))


def test_the_samples_of_a_loss_stack_by_discriminator_updates_and_batch_norm():
    configs = grid("lucic", "laptop", samples=20)
    assert len(configs) == 20 * len(LOSSES) and len({c.config_hash() for c in configs}) == len(configs)
    for family, members in itertools.groupby(sorted(configs, key=lambda c: c.family), key=lambda c: c.family):
        keys = {c.group_key() for c in members}
        assert len(keys) <= len(lucic.DISC_ITERS) * len(lucic.BATCH_NORM_D), family
    assert {(c.size_g, c.size_d, c.steps) for c in configs} == {(50, 64, 3500)}  # Table 1's laptop budget


def test_phase_3_takes_each_losss_lowest_distance_over_the_seeds():
    def stored(family, distance, **fields):
        return {"family": family, "pt_weight": 0.0, **fields}, {"frechet_distance": distance}

    completed = [stored("wgan", 5.0, clip=0.1), stored("wgan", 3.0, clip=0.2), stored("wgan", float("nan"), clip=0.3),
                 stored("ebgan", 4.0, pt_weight=0.1), stored("ebgan", 6.0), stored("gan", None)]
    best = lucic.best_configs(completed, seeds=(0, 1, 2))
    assert [(lucic.loss_of(c.to_dict()), c.seed) for c in best] == [
        ("EBGAN", 0), ("EBGAN", 1), ("EBGAN", 2), ("EBGAN-PT", 0), ("EBGAN-PT", 1), ("EBGAN-PT", 2),
        ("WGAN", 0), ("WGAN", 1), ("WGAN", 2)]
    assert best[6].clip == 0.2 and best[3].pt_weight == 0.1
    with pytest.raises(ValueError, match="no completed trial with a Fréchet distance"):
        lucic.best_configs([stored("gan", None)], seeds=(0,))


def test_the_budget_curve_is_the_minimum_of_k_runs_drawn_without_replacement():
    from analysis.lucic import min_of_k

    distances = np.array([7.0, 3.0, np.inf, 5.0, 4.0, 9.0])
    mins = min_of_k(distances, resamples=4000)
    assert set(mins[0]) == set(distances) and (mins[-1] == 3.0).all()
    assert (np.diff(mins, axis=0) <= 0).all()
    for k in range(1, len(distances) + 1):  # against the exact expectation over every subset of k runs
        subsets = [min(c) for c in itertools.combinations(distances, k)]
        if all(math.isfinite(v) for v in subsets):
            assert mins[k - 1].mean() == pytest.approx(np.mean(subsets), rel=0.03)


def sweep(db: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--profile", "smoke", "--db",
                           f"sqlite:///{db}", "--quiet", *flags], cwd=REPO, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def study_db(tmp_path_factory, ray_address) -> Path:
    """Phase 1 of the smoke study on a Ray cluster (one sample per loss), then phase 3 on two seeds."""
    db = tmp_path_factory.mktemp("lucic") / "r.sqlite"
    done = sweep(db, "--grid", "lucic", "--samples", "1", "--storage-path", str(db.parent / "ray"), "--address",
                 ray_address)
    assert done.returncode == 0, done.stderr[-2000:]
    best = sweep(db, "--best-of", "lucic1-smoke", "--seeds", "0,1", "--executor", "local")
    assert best.returncode == 0, best.stderr[-2000:]
    return db


def test_phase_1_stores_every_loss_alike_on_both_executors_and_phase_3_its_best_over_seeds(study_db, tmp_path):
    local = tmp_path / "local.sqlite"
    assert sweep(local, "--grid", "lucic", "--samples", "1", "--executor", "local").returncode == 0
    query = ("select config_hash, seed, status, frechet_distance, disc_iters, batch_norm_d from trials t join sweeps s "
             "on s.id = t.sweep_id where s.name = ? order by config_hash")
    with sqlite3.connect(study_db) as db:
        on_ray = db.execute(query, ("lucic1-smoke",)).fetchall()
        phase3 = db.execute(query, ("lucic1-smoke-best",)).fetchall()
        families = {row[0] for row in db.execute("select distinct family from trials")}
    with sqlite3.connect(local) as db:
        assert db.execute(query, ("lucic1-smoke",)).fetchall() == on_ray
    assert len(on_ray) == len(LOSSES) and all(r[2] in ("completed", "diverged") for r in on_ray)
    assert families == {f.name for f in FAMILIES if f.losses}
    assert len(phase3) == 2 * sum(r[2] == "completed" for r in on_ray) and {r[1] for r in phase3} == {0, 1}


def test_figures_report_explore_and_query_show_the_study(study_db, tmp_path):
    from analysis.explore.data import study_runs

    url = f"sqlite:///{study_db}"
    drawn = subprocess.run([EBGAN, "figures", "--db", url, "--out", str(tmp_path / "f")], capture_output=True,
                           text=True, timeout=300)
    assert drawn.returncode == 0, drawn.stderr
    assert {p.stem for p in (tmp_path / "f").glob("*.png")} == {"lucic_budget", "lucic_distributions", "lucic_seeds"}
    report = tmp_path / "report.html"
    subprocess.run([EBGAN, "report", "--db", url, "--figures", str(tmp_path / "f"), "--out", str(report)],
                   check=True, capture_output=True, timeout=300)
    text = report.read_text()
    assert "Lucic et al.'s study" in text and "Phase 3: each loss's best setting over seeds" in text
    assert "Profile <code>smoke</code>" not in text  # the study's runs are not pooled into Table 1's statistics
    runs = study_runs(url, "table1")
    loss_axis = next(a for a in runs["axes"] if a["name"] == "loss")
    assert loss_axis["categorical"] and set(loss_axis["categories"]) == LOSSES
    listed = subprocess.run([EBGAN, "query", "--db", url, "--where", "family=wgan-gp", "--format", "json", "--top", "0",
                             "--columns", "loss,penalty_weight,frechet_distance"], capture_output=True, text=True,
                            timeout=300)
    assert {row["loss"] for row in json.loads(listed.stdout)} == {"WGAN-GP"}


def test_bad_study_requests_are_one_line_errors(tmp_path):
    db = tmp_path / "r.sqlite"
    wrong = sweep(db, "--grid", "gan", "--samples", "5", "--executor", "local")
    assert wrong.returncode == 2 and "--samples sizes the sampled grid lucic; 'gan' is not sampled" in wrong.stderr
    missing = sweep(db, "--best-of", "nowhere", "--executor", "local")
    assert missing.returncode == 2 and "no sweep named 'nowhere'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_the_settings_table_ranks_each_shared_setting_against_the_distance():
    import pandas as pd

    from analysis.lucic import settings_table

    runs = pd.DataFrame({"lr": [1e-5, 1e-4, 1e-3, 1e-2], "adam_beta1": [0.9, 0.1, 0.5, 0.3],
                         "disc_iters": [1, 2, 3, 5], "batch_norm_d": [True, False, True, False],
                         "distance": [8.0, 6.0, 4.0, 2.0]})
    table = settings_table(runs).set_index("setting")
    assert table.loc["lr", "spearman_rho"] == pytest.approx(-1.0)
    assert table.loc["disc_iters", "spearman_rho"] == pytest.approx(-1.0)
    assert tuple(table.loc["lr", ["median_lower_half", "median_upper_half"]]) == (7.0, 3.0)
    assert tuple(table.loc["batch_norm_d", ["median_lower_half", "median_upper_half"]]) == (4.0, 6.0)  # off, on
