"""Figures, queries and the report from a database built through the real store."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from analysis import figures
from analysis.db import AnalysisError, connect_readonly, load_trials
from analysis.query import filter_trials, rank_trials
from analysis.report import write_report
from analysis.table1 import figures as table1_figures
from ebgan_core.images import grid_png
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import GAN_LRS, MARGINS_FIG9
from sweeps.store.result_store import ResultStore


def _row(config: TrialConfig, rng: np.random.Generator, status: str = "completed") -> dict:
    scored = status == "completed"
    return {"config": config.to_dict(), "status": status, "steps": 3,
            "scores": {"i_prime": float(rng.gamma(2.0)), "n_samples": 100, "classes_present": 10,
                       "class_histogram": [10] * 10} if scored else None,
            "png": grid_png(rng.integers(0, 255, (64, 32, 32), dtype=np.uint8)) if scored else None,
            "curves": {"loss_d": [1.0]}, "code_version": "test", "library_versions": {"torch": "x"},
            "interim_scores": {1: {"i_prime": float(rng.gamma(1.0)), "n_samples": 100}} if scored else {},
            "error": None if scored else "Traceback: boom"}


def build_db(path: Path, families: tuple[str, ...] = ("ebgan", "gan")) -> str:
    """A small sweep of both families: every GAN optimiser sub-grid, EBGAN-PT, the margin grid, failures."""
    rng = np.random.default_rng(0)
    base = TrialConfig(steps=3, score_samples=100)
    rows = []
    for n_g, n_d, dropout in itertools.product((2, 3, 4, 5), (2, 3, 4, 5), (False, True)):
        shape = base.replace(n_layer_g=n_g, n_layer_d=n_d, dropout_d=dropout)
        if "ebgan" in families:
            rows.append(_row(shape, rng, "diverged" if (n_g, n_d, dropout) == (5, 5, True) else "completed"))
            rows.append(_row(shape.replace(pt_weight=0.1), rng))
        if "gan" in families and dropout:
            for optim_d, optim_g, lr in itertools.product(("adam", "sgd"), ("adam", "sgd"), GAN_LRS):
                failed = (n_g, n_d, optim_d, lr) == (2, 2, "sgd", 0.01)
                rows.append(_row(shape.replace(family="gan", optim_d=optim_d, optim_g=optim_g, lr=lr), rng,
                                 "failed" if failed else "completed"))
    if "ebgan" in families:
        rows += [_row(base.replace(size_g=1600, margin=m), rng) for m in MARGINS_FIG9]
        # An adaptive search over the same family, stored beside the grid.
        rows += [_row(base.replace(size_g=400 + 100 * i, seed=7), rng) | {"search": "optuna"} for i in range(5)]
    url = f"sqlite:///{path}"
    store = ResultStore(url)
    sweep = store.open_sweep("test", "all", "smoke", "grid", "test", {"torch": "x"}, "cpu", {})
    store.record(sweep, rows)
    store.close()
    return url


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return build_db(tmp_path_factory.mktemp("db") / "r.sqlite")


def test_histogram_percentages_add_up_to_100_per_family(db):
    trials = load_trials(db)
    edges = table1_figures.score_edges(trials)
    for label in ("EBGAN", "GAN", "EBGAN-PT"):
        scores = trials.loc[trials["label"] == label, "i_prime"]
        percent, failed = table1_figures.histogram_percentages(scores, edges)
        assert percent.sum() + failed == pytest.approx(100.0)
    gan = trials.loc[trials["label"] == "GAN", "i_prime"]
    assert table1_figures.histogram_percentages(gan, edges)[1] == pytest.approx(100 * gan.isna().sum() / len(gan))
    assert gan.isna().sum() > 0, "failed runs are counted, never dropped"


def test_figures_have_the_papers_panels(db):
    trials = load_trials(db)
    fig2 = table1_figures.fig2_histograms(trials)
    assert [ax.get_title().split(":")[0] for ax in fig2.axes] == ["(a) all", "(b) nLayer[GD] <= 4",
                                                                  "(c) nLayer[GD] <= 3"]
    assert "samples per score" in fig2._suptitle.get_text()
    fig3 = table1_figures.fig3_subgrids(trials)
    visible = [ax for ax in fig3.axes if ax.get_visible()]
    assert len(visible) == 12 and len({ax.get_title() for ax in visible}) == 12
    fig4 = table1_figures.fig4_best_samples(trials, db)
    assert [ax.get_title().split(":")[0] for ax in fig4.axes] == ["best GAN", "best EBGAN", "best EBGAN-PT"]
    assert len(table1_figures.fig9_margins(trials, db).axes) == len(MARGINS_FIG9)


def test_write_figures_writes_png_and_svg_for_every_figure(db, tmp_path):
    written, skipped = figures.write_figures(db, tmp_path)
    assert not skipped
    names = {p.name for p in written}
    for stem in ("fig2_histograms", "fig3_gan_subgrids", "fig4_best_samples", "fig9_margins", "ecdf_i_prime",
                 "best_vs_budget", "i_prime_vs_steps", "importance_fanova"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
        assert (tmp_path / f"{stem}.png").stat().st_size > 5000


def test_partial_data_draws_what_it_can(tmp_path):
    only_ebgan = build_db(tmp_path / "e.sqlite", families=("ebgan",))
    written, skipped = figures.write_figures(only_ebgan, tmp_path / "figs")
    assert any(p.name == "fig2_histograms.png" for p in written)
    assert any(note.startswith("fig3_gan_subgrids") for note in skipped)
    with pytest.raises(AnalysisError, match="not found; fix: run `make sweep` first"):
        figures.write_figures(f"sqlite:///{tmp_path / 'missing.sqlite'}", tmp_path)
    ResultStore(f"sqlite:///{tmp_path / 'empty.sqlite'}").close()
    assert figures.write_figures(f"sqlite:///{tmp_path / 'empty.sqlite'}", tmp_path / "x") == (
        [], ["the database holds no trials yet; run a sweep first"])


def test_analysis_connection_cannot_write(db):
    engine = connect_readonly(db)
    with pytest.raises(Exception, match="readonly"), engine.begin() as connection:
        connection.execute(text("delete from trials"))
    assert len(load_trials(db)) > 0


def test_best_vs_budget_puts_adaptive_search_beside_the_grid(db):
    trials = load_trials(db)
    labels = [line.get_label() for line in table1_figures.best_vs_budget(trials).axes[0].get_lines()]
    assert any("EBGAN grid" in label for label in labels) and any("EBGAN optuna (n=5)" in label for label in labels)


def test_best_found_curve_is_monotone_and_reaches_the_maximum():
    scores = np.array([0.5, np.nan, 2.0, 1.0, 0.1])
    mean, band = table1_figures.best_found_curves(scores, repeats=50)
    assert np.all(np.diff(mean[~np.isnan(mean)]) >= -1e-12)
    assert mean[-1] == pytest.approx(2.0) and band.shape == (2, 5)


def test_query_filters_and_ranks(db):
    trials = load_trials(db)
    gan = filter_trials(trials, ["family=gan", "lr=0.01,0.001"], min_i_prime=0.5)
    assert set(gan["lr"]) <= {0.01, 0.001} and (gan["i_prime"] >= 0.5).all() and set(gan["family"]) == {"gan"}
    top = rank_trials(gan, top=3)
    assert len(top) == 3 and top["i_prime"].is_monotonic_decreasing
    assert set(filter_trials(trials, ["dropout_d=true"])["dropout_d"]) == {1}
    with pytest.raises(ValueError, match="unknown column 'sizeG'"):
        filter_trials(trials, ["sizeG=400"])


def test_report_is_one_self_contained_page_that_draws_its_own_figures(db, tmp_path):
    page = write_report(db, tmp_path / "figs", tmp_path / "report.html").read_text()
    assert "drawn for this report" in page and len(list((tmp_path / "figs").glob("*.png"))) == 8
    for heading in ("Profile <code>smoke</code>", "I' per family", "EBGAN against GAN", "Best runs and their samples",
                    "Runs per family and status", "Sweeps", "fig2_histograms", "importance_fanova"):
        assert heading in page
    # 8 figures, and the sample grids of up to 4 best runs of each of the 10 labels (EBGAN, EBGAN-PT, GAN, 7 margins)
    cards = sum(min(4, n) for n in load_trials(db).query("i_prime == i_prime").groupby("label").size())
    assert page.count("data:image/png;base64,") == 8 + cards and "src='http" not in page
    assert "{&quot;" not in page and '{"' not in page, "settings shown as raw JSON"
    again = write_report(db, tmp_path / "figs", tmp_path / "again.html").read_text()
    assert "drawn for this report" not in again  # the figures now beside it are used


def test_report_statistics_are_those_of_the_statistics_module(db):
    from analysis.report import statistics_section
    from analysis.table1 import statistics

    trials = load_trials(db)
    grid = trials[trials["search"] == "grid"]
    html = "".join(statistics_section(grid))
    ebgan = statistics.family_summary(grid).set_index("label").loc["EBGAN"]
    assert f"{ebgan['median']:.3g} [{ebgan['median_low']:.3g}, {ebgan['median_high']:.3g}]" in html
    overall = statistics.family_comparison(grid).iloc[0]
    assert f"{overall['cliffs_delta']:.3g}" in html


def test_export_writes_every_trial_and_its_interim_scores_without_images(db, tmp_path):
    import pandas as pd

    from analysis.export import export_sweep

    trials_csv, interim_csv = export_sweep(db, "test", tmp_path / "export")
    exported, stored = pd.read_csv(trials_csv), load_trials(db, "test")
    assert len(exported) == len(stored) and set(exported["status"]) == set(stored["status"])
    assert {"config_hash", "seed", "lr", "i_prime", "code_version", "library_versions"} <= set(exported.columns)
    assert not {"png", "curves", "id"} & set(exported.columns)
    interim = pd.read_csv(interim_csv)
    assert len(interim) == (stored["status"] == "completed").sum() and set(interim["step"]) == {1}
    with pytest.raises(AnalysisError, match="no trials in sweep 'nope'"):
        export_sweep(db, "nope", tmp_path / "x")
