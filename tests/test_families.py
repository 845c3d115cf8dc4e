"""A family defined in this file only, a least-squares GAN (Mao et al. 2017), through every part of the system:
its losses against a plain PyTorch model, per member of a stacked group; a smoke sweep on both executors (its Ray
workers load this file as a plugin); the store, `ebgan query`, `ebgan figures`, the report and the explore page's data,
under its own label. Then every silent failure of a misregistered family is a one-line error.

This file is the plugin too: importing it registers LSGAN-logit, the least-squares loss on the discriminator's
unbounded output (Mao et al.'s form; the built-in LSGAN takes it on sigmoids, as compare_gan does). Pytest imports
it; the sweeps' processes load it by path.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ebgan_core.registry import PLUGINS_ENV
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES, GAN_OPTIMISERS, GAN_SUBSETS, Family, Grid, table1_rows
from ebgan_core.table1.train import train_group

REPO = Path(__file__).resolve().parent.parent
THIS_FILE = str(Path(__file__).resolve())
EBGAN = str(Path(sys.executable).parent / "ebgan")

LSGAN = FAMILIES.register(Family(
    name="lsgan-logit", label="LSGAN-logit", color="darkviolet", discriminator="binary", statistic="output",
    # L_D = 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2],  L_G = 0.5 E[(D(G(z)) - 1)^2], per member over its N samples
    discriminator_loss=lambda real, fake, parameters, step: (0.5 * (real.value - 1).square().mean(-1)
                                                             + 0.5 * fake.value.square().mean(-1)),
    generator_loss=lambda fake, parameters: 0.5 * (fake.value - 1).square().mean(-1),
    grids={"lsgan-logit": Grid(lambda: table1_rows("lsgan-logit", GAN_OPTIMISERS))}, subsets=GAN_SUBSETS,
))
PLAIN_LSGAN = (lambda out_real, out_fake, config: 0.5 * F.mse_loss(out_real, torch.ones_like(out_real))
               + 0.5 * F.mse_loss(out_fake, torch.zeros_like(out_fake)),
               lambda out, code, config: 0.5 * F.mse_loss(out, torch.ones_like(out)))
TINY = TrialConfig(family="lsgan-logit", n_layer_g=3, size_g=48, n_layer_d=3, size_d=32, batch_size=16, noise_dim=16,
                   steps=20, score_samples=64)


@pytest.fixture(scope="module")
def real_subset(mnist_train) -> torch.Tensor:
    return mnist_train[0][:4096]


# Float64, and Adam where it does not turn the rounding of near-zero gradients into lr-sized steps: a least-squares
# discriminator starts with outputs near 0 and passes the generator gradients near Adam's eps (at lr 2e-3 for both,
# the stacked and the plain run drift apart from 1e-9 after one step to 0.1 after 24, as the GAN's do to 1e-6).
@pytest.mark.parametrize("optimisers", [("sgd", "sgd", 1e-2), ("adam", "sgd", 1e-3), ("adam", "adam", 1e-4)])
def test_lsgan_trains_as_a_plain_pytorch_model_with_its_losses_written_out(optimisers, real_subset, judge):
    from test_train import assert_matches_reference

    optim_d, optim_g, lr = optimisers
    config = TINY.replace(optim_d=optim_d, optim_g=optim_g, lr=lr, steps=24)
    assert_matches_reference(config, real_subset, judge, torch.float64, rtol=1e-6, losses=PLAIN_LSGAN)


def test_lsgan_members_in_a_group_are_themselves_alone_with_their_own_curves(real_subset, judge):
    from test_train import assert_same_member

    configs = [TINY.replace(optim_d=d, optim_g=g, lr=lr, dropout_d=drop)
               for d, g, lr, drop in (("adam", "adam", 1e-3, False), ("sgd", "sgd", 1e-2, True),
                                      ("sgd", "adam", 1e-4, False))]
    grouped = train_group(configs, real_subset, judge, keep_state=True, dtype=torch.float64)
    for index, config in enumerate(configs):
        (alone,) = train_group([config], real_subset, judge, keep_state=True, dtype=torch.float64)
        assert_same_member(grouped[index], alone)
    assert set(grouped[0].curves) == {"loss_d", "loss_g", "output_real", "output_fake"}


def lsgan_sweep(db: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", "lsgan-logit", "--profile",
                           "smoke", "--db", f"sqlite:///{db}", "--plugin", THIS_FILE, "--quiet", *flags],
                          cwd=db.parent, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def lsgan_db(tmp_path_factory, ray_address) -> Path:
    """The LSGAN smoke grid swept on a Ray cluster the sweep joins (its workers load this file from $EBGAN_PLUGINS,
    which the sweep's job carries)."""
    db = tmp_path_factory.mktemp("lsgan-logit") / "r.sqlite"
    done = lsgan_sweep(db, "--storage-path", str(db.parent / "ray"), "--address", ray_address)
    assert done.returncode == 0, done.stderr[-3000:]
    return db


SCIENCE = ("select t.family, t.config_hash, t.seed, t.status, t.i_prime, t.frechet_distance, t.group_size, c.curves, "
           "s.png from trials t join curves c on c.trial_id = t.id left join samples s on s.trial_id = t.id "
           "order by 2, 3")


@pytest.mark.slow
def test_an_lsgan_smoke_sweep_runs_on_both_executors_and_stores_the_same_rows(lsgan_db, tmp_path):
    with sqlite3.connect(lsgan_db) as db:
        ray_rows = db.execute(SCIENCE).fetchall()
    assert len(ray_rows) == 4 and {r[0] for r in ray_rows} == {"lsgan-logit"}
    assert {r[3] for r in ray_rows} == {"completed"}
    local = tmp_path / "local.sqlite"
    done = lsgan_sweep(local, "--executor", "local")
    assert done.returncode == 0, done.stderr[-3000:]
    with sqlite3.connect(local) as db:
        assert db.execute(SCIENCE).fetchall() == ray_rows


@pytest.mark.slow
def test_query_figures_report_and_the_explore_page_show_lsgan_under_its_own_label(lsgan_db, tmp_path):
    url = f"sqlite:///{lsgan_db}"
    listed = subprocess.run([EBGAN, "query", "--db", url, "--where", "family=lsgan-logit", "--format", "json",
                             "--plugin", THIS_FILE], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {row["label"] for row in json.loads(listed.stdout)} == {"LSGAN-logit"}
    figures, report = tmp_path / "figures", tmp_path / "report.html"
    for command in (["figures", "--out", str(figures)], ["report", "--figures", str(figures), "--out", str(report)]):
        done = subprocess.run([EBGAN, *command, "--db", url, "--plugin", THIS_FILE], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (figures / "fig2_histograms.png").is_file() and (figures / "ecdf_i_prime.svg").is_file()
    assert "LSGAN-logit (not in the paper)" in report.read_text()
    from analysis.db import load_trials
    from analysis.explore.data import study_runs
    from analysis.table1.figures import ecdf_by_family

    legend = ecdf_by_family(load_trials(url)).axes[0].get_legend()
    assert [t.get_text().split(" (n=")[0] for t in legend.get_texts()] == ["LSGAN-logit (not in the paper)"]

    runs = study_runs(url, "table1")
    assert runs["count"] == 4 and set(runs["columns"]["label"]) == {"LSGAN-logit"}


def test_the_papers_grids_stay_the_papers_whatever_else_is_registered():
    from sweeps.table1.grids import grid, grid_names

    assert "lsgan-logit" in FAMILIES.names() and "lsgan-logit" in grid_names()
    assert len(grid("lsgan-logit", "demo")) == 192  # the GAN's subsets, as it says
    assert len(grid("lsgan-logit", "smoke")) == 4
    assert [len(grid("all", p)) for p in ("paper", "laptop-balanced", "laptop-mini")] == [7175, 327, 47]
    assert {c.family for c in grid("all", "demo")} == {"ebgan", "gan"}


# --- every wrong way of adding a family fails in one line -----------------------------------------------------


def test_a_family_no_entry_names_is_a_one_line_error_wherever_its_name_enters(tmp_path):
    from analysis.db import AnalysisError, family_label
    from analysis.query import filter_trials
    from sweeps.grid_file import load_grid_file
    from sweeps.table1.grids import grid

    def one_line(error: pytest.ExceptionInfo, name: str) -> None:
        message = str(error.value)
        assert f"'{name}'" in message and "registered: ebgan, gan" in message and "\n" not in message

    with pytest.raises(ValueError) as error:  # a config
        TrialConfig(family="sngan")
    one_line(error, "sngan")
    with pytest.raises(ValueError) as error:  # --grid
        grid("sngan", "smoke")
    assert "unknown grid 'sngan'" in str(error.value)
    toml = tmp_path / "g.toml"
    toml.write_text('[base]\nfamily = "sngan"\n[axes]\nlr = [0.001]\n')
    with pytest.raises(ValueError) as error:  # a grid file
        load_grid_file(toml)
    one_line(error, "sngan")
    import pandas as pd

    stored = pd.DataFrame({"family": ["sngan"], "study": ["table1"], "margin": [10.0], "pt_weight": [0.0]})
    with pytest.raises(AnalysisError) as error:  # a stored trial read by the analysis
        family_label(stored.iloc[0])
    one_line(error, "sngan")
    with pytest.raises(ValueError) as error:  # ebgan query --where family=
        filter_trials(stored.assign(family="gan"), ["family=sngan"])
    one_line(error, "sngan")


def test_a_sweep_of_a_plugin_family_without_its_plugin_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    code = ("import sys; from sweeps.mnist_grid import main; "
            f"sys.exit(main(['--grid', 'lsgan-logit', '--profile', 'smoke', '--db', "
            f"'sqlite:///{tmp_path / 'r.sqlite'}']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "unknown grid 'lsgan-logit'" in done.stderr
    figures = subprocess.run([EBGAN, "figures", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}", "--plugin",
                              str(tmp_path / "missing.py")], capture_output=True, text=True, timeout=120)
    assert figures.returncode == 2 and "plugin file" in figures.stderr and "not found" in figures.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "gan"}, "Table 1 family 'gan' is registered twice"),
    ({"name": "lsgan2", "discriminator": "convolutional"}, "unknown discriminator 'convolutional'"),
    ({"name": "lsgan2"}, "grid name 'lsgan-logit' is taken"),
    ({"name": "lsgan2", "grids": {"all": LSGAN.grids["lsgan-logit"]}}, "grid name 'all' is taken"),
])
def test_registering_a_clashing_or_broken_family_is_refused(change, message):
    import dataclasses

    with pytest.raises(ValueError, match=message):
        FAMILIES.register(dataclasses.replace(LSGAN, **change))


def test_a_field_the_family_does_not_use_and_a_profile_subset_it_lacks_are_errors(monkeypatch):
    import dataclasses

    from sweeps.table1.grids import grid

    with pytest.raises(ValueError, match=r"margin applies to EBGAN only, not to LSGAN-logit; set it to 10\.0"):
        TINY.replace(margin=4.0)
    assert TINY.replace(margin=10.0).config_hash() == TINY.config_hash()  # and it stays out of the hash
    without_mini = dataclasses.replace(LSGAN, subsets={"demo": GAN_SUBSETS["demo"]})
    monkeypatch.setitem(FAMILIES._entries, "lsgan-logit", without_mini)
    with pytest.raises(ValueError, match="family 'lsgan-logit' defines no 'mini' subset for profile 'laptop-mini'"):
        grid("lsgan-logit", "laptop-mini")
