"""Lucic et al.'s study ("Are GANs Created Equal?") from the database: its figures, its table and its report section.

Phase 1's runs are the trials of a sweep of the sampled grid ``lucic``, phase 3's those of a ``best-of:`` sweep. The
score is the Fréchet distance on the pinned judge's features (lower is better); a diverged run counts as the worst
(an infinite distance), never dropped. The budget figure is the study's: for each loss, the distribution of the best
(minimum) distance among k runs drawn at random from its n stored runs, without replacement, against k = 1..n (the
median and the 5-95% band of ``RESAMPLES`` draws, seeded).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from analysis.db import BEST_OF_PREFIX, SAMPLED_GRID
from analysis.table1.statistics import bootstrap_ci, compare
from ebgan_core.table1.families import FAMILIES

RESAMPLES = 1000
SEED = 2018
REFERENCE_LOSS = "NS-GAN"  # the loss the others are compared against (Lucic et al.'s most consistent one)


def phases(trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the largest phase 1's runs, the latest phase 3's runs) of ``trials``, each with ``distance``: the Fréchet
    distance, inf if diverged; failed runs are left out (they are retried, not results)."""
    if trials.empty or "sweep_grid" not in trials:
        return pd.DataFrame(), pd.DataFrame()
    kept = trials[trials["status"].isin(("completed", "diverged"))].copy()
    kept["distance"] = kept["frechet_distance"].where(kept["status"] == "completed", np.inf).astype(float)
    phase1 = kept[kept["sweep_grid"] == SAMPLED_GRID]
    if not phase1.empty:  # one study: the phase-1 sweep with the most runs (two would count shared samples twice)
        phase1 = phase1[phase1["sweep"] == phase1["sweep"].value_counts().idxmax()]
    phase3 = kept[kept["sweep_grid"].str.startswith(BEST_OF_PREFIX)]
    if not phase3.empty:  # the latest phase 3 (each holds one setting per loss; a grown phase 1 gets another)
        latest = phase3.groupby("sweep")["finished_at"].max().idxmax()
        phase3 = phase3[phase3["sweep"] == latest]
    return phase1, phase3


def loss_colors() -> dict[str, str]:
    """A colour per loss of every registered family (its label's colour where the loss has one)."""
    palette = plt.get_cmap("tab20").colors
    colors = {}
    for family in FAMILIES:
        for index, loss in enumerate(family.losses):
            colors[loss] = family.colors().get(loss, family.color if index == 0 else palette[len(colors) % 20])
    return colors


def min_of_k(distances: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[n, resamples]: row k-1 holds the minimum of k distances drawn without replacement, ``resamples`` times."""
    rng = np.random.default_rng(seed)
    n = len(distances)
    orders = np.argsort(rng.random((resamples, n)), axis=1)  # each row a random permutation of the runs
    running_min = np.minimum.accumulate(distances[orders], axis=1)  # the min of the first k runs of each permutation
    return running_min.T


def budget_figure(phase1: pd.DataFrame) -> Figure | None:
    """The minimum distance among k runs against k, per loss (median and 5-95% band)."""
    if phase1.empty:
        return None
    figure, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = loss_colors()
    for loss, runs in sorted(phase1.groupby("loss"), key=lambda item: item[0]):
        mins = min_of_k(runs["distance"].to_numpy())
        ks = np.arange(1, len(runs) + 1)
        with np.errstate(invalid="ignore"):
            shown = np.where(np.isinf(mins), np.nan, mins)  # k runs that all diverged: no point
            low, median, high = (np.nanpercentile(shown, q, axis=1) for q in (5, 50, 95))
        ax.plot(ks, median, color=colors.get(loss), label=f"{loss} (n={len(runs)})")
        ax.fill_between(ks, low, high, color=colors.get(loss), alpha=0.12)
    ax.set_xlabel("budget k (runs of random settings)")
    ax.set_ylabel("best Fréchet distance of k runs (lower is better)")
    ax.set_xscale("log")
    ax.set_title(f"Lucic et al.'s budget figure\n{_budget_note(phase1)}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def _per_loss_figure(runs: pd.DataFrame, draw: Callable[[plt.Axes, int, pd.Series, str | None], None], ylabel: str,
                     title: str, yscale: str = "linear") -> Figure:
    """A column of points per loss, sorted by name: ``draw(ax, position, finite distances, colour)`` draws one, and a
    loss with diverged runs is marked "div n" above its column."""
    order = sorted(runs["loss"].unique())
    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = loss_colors()
    for position, loss in enumerate(order):
        distances = runs.loc[runs["loss"] == loss, "distance"]
        finite = distances[np.isfinite(distances)]
        draw(ax, position, finite, colors.get(loss))
        if len(finite) < len(distances):
            ax.annotate(f"div {len(distances) - len(finite)}", (position, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_yscale(yscale)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9, pad=14)
    figure.tight_layout()
    return figure


def distributions_figure(phase1: pd.DataFrame) -> Figure | None:
    """Each loss's distances over its random settings (diverged runs counted beside the axis)."""
    if phase1.empty:
        return None

    def draw(ax: plt.Axes, position: int, finite: pd.Series, color: str | None) -> None:
        jitter = np.random.default_rng(SEED + position).uniform(-0.25, 0.25, len(finite))
        ax.scatter(position + jitter, finite, s=9, color=color, alpha=0.6)
        if len(finite):
            ax.hlines(finite.median(), position - 0.35, position + 0.35, color="black", lw=1.5)

    return _per_loss_figure(phase1, draw, "Fréchet distance (black: median; div: diverged runs)",
                            f"Each loss over its random settings\n{_budget_note(phase1)}", yscale="log")


def seeds_figure(phase3: pd.DataFrame) -> Figure | None:
    """Phase 3: each loss's best setting over its seeds."""
    if phase3.empty:
        return None

    def draw(ax: plt.Axes, position: int, finite: pd.Series, color: str | None) -> None:
        ax.scatter(np.full(len(finite), position), finite, s=14, color=color, alpha=0.7)
        if len(finite):
            ax.errorbar(position + 0.2, finite.mean(), yerr=finite.std(ddof=1) if len(finite) > 1 else 0, fmt="o",
                        color="black", ms=4, capsize=3)

    seeds = phase3.groupby("loss").size()
    count = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    return _per_loss_figure(phase3, draw, "Fréchet distance (black: mean ± std)",
                            f"Each loss's best setting over {count} seeds\n{_budget_note(phase3)}")


def _budget_note(runs: pd.DataFrame) -> str:
    widths = runs[["size_g", "size_d"]].drop_duplicates()
    shape = ", ".join(f"G {g} / D {d} units" for g, d in widths.itertuples(index=False))
    return (f"{len(runs)} runs, {'/'.join(str(s) for s in sorted(runs['steps'].unique()))} generator updates, "
            f"{shape}, {int(runs['n_samples'].max()) if runs['n_samples'].notna().any() else '?'} samples per score")


def phase1_table(phase1: pd.DataFrame) -> pd.DataFrame:
    """Per loss: runs, diverged, the best and the median distance (95% bootstrap CI), and vs the reference loss the
    probability that a random setting of the loss scores better (lower) and its Mann-Whitney p."""
    rows = []
    reference = phase1.loc[phase1["loss"] == REFERENCE_LOSS, "distance"].to_numpy()
    for loss, runs in sorted(phase1.groupby("loss"), key=lambda item: item[0]):
        distances = runs["distance"].to_numpy()
        finite = distances[np.isfinite(distances)]
        low, high = bootstrap_ci(distances, np.median) if len(finite) else (np.nan, np.nan)
        versus = compare(-distances, -reference) if len(reference) and loss != REFERENCE_LOSS else {}
        rows.append({"loss": loss, "runs": len(runs), "diverged": int((~np.isfinite(distances)).sum()),
                     "best": finite.min() if len(finite) else np.nan, "median": np.median(distances),
                     "median_low": low, "median_high": high,
                     f"P(better than {REFERENCE_LOSS})": versus.get("superiority", np.nan),
                     "p": versus.get("p_value", np.nan)})
    return pd.DataFrame(rows)


SHARED_SETTINGS = ("lr", "adam_beta1", "disc_iters", "batch_norm_d")  # the settings every loss samples


def settings_table(phase1: pd.DataFrame) -> pd.DataFrame:
    """How each setting every loss samples goes with the distance, over all of phase 1's runs: Spearman's rank
    correlation (negative: larger values, lower distances) with its p-value, and the median distance at the setting's
    lower and upper half (booleans: off and on)."""
    rows = []
    for name in SHARED_SETTINGS:
        values = phase1[name].astype(float)
        test = stats.spearmanr(values, phase1["distance"])
        upper = values > values.median() if values.nunique() > 2 else values == values.max()
        rows.append({"setting": name, "spearman_rho": test.statistic, "p": test.pvalue,
                     "median_lower_half": phase1.loc[~upper, "distance"].median(),
                     "median_upper_half": phase1.loc[upper, "distance"].median()})
    return pd.DataFrame(rows)


def phase3_table(phase3: pd.DataFrame) -> pd.DataFrame:
    """Per loss: its best setting's distance over seeds, mean ± std, and the seeds (diverged counted)."""
    rows = []
    for loss, runs in sorted(phase3.groupby("loss"), key=lambda item: item[0]):
        finite = runs["distance"][np.isfinite(runs["distance"])]
        rows.append({"loss": loss, "seeds": len(runs), "diverged": len(runs) - len(finite), "mean": finite.mean(),
                     "std": finite.std(ddof=1) if len(finite) > 1 else np.nan,
                     "setting": runs["config_hash"].iloc[0][:10]})
    return pd.DataFrame(rows).sort_values("mean")


def figure_makers(trials: pd.DataFrame) -> dict[str, Callable[[], Figure | None]]:
    """The study's figures by file name (each maker returns None where data is lacking)."""
    phase1, phase3 = phases(trials)
    return {"lucic_budget": lambda: budget_figure(phase1), "lucic_distributions": lambda: distributions_figure(phase1),
            "lucic_seeds": lambda: seeds_figure(phase3)}


def report_section(trials: pd.DataFrame, table: Callable[[pd.DataFrame], str]) -> list[str]:
    """The report's section on the study (``table`` renders a DataFrame as HTML); empty without its runs."""
    phase1, phase3 = phases(trials)
    if phase1.empty and phase3.empty:
        return []
    parts = ["<h2>Lucic et al.'s study: the losses at equal budget</h2>",
             "<p class='note'>Fréchet distance on the pinned judge's features against MNIST's test set (lower is "
             "better); a diverged run counts as the worst. Probability of superiority: that a random setting of the "
             f"loss scores better than one of {REFERENCE_LOSS} (0.5: no difference), with the Mann-Whitney p.</p>"]
    if not phase1.empty:
        parts += [f"<h3>Phase 1: random settings ({html.escape(_budget_note(phase1))})</h3>",
                  table(phase1_table(phase1).round(3)),
                  "<p class='note'>The settings every loss samples, over all losses' runs: Spearman's rank correlation "
                  "with the distance (negative: larger values score better) and the median distance below and above "
                  "the setting's median (booleans: off, on).</p>", table(settings_table(phase1).round(3))]
    if not phase3.empty:
        parts += [f"<h3>Phase 3: each loss's best setting over seeds ({html.escape(_budget_note(phase3))})</h3>",
                  table(phase3_table(phase3).round(3))]
    return parts
