"""Table 1's figures: the paper's (2, 3, 4, 9) and four beyond it (ECDFs, best found vs configs tried, I' against the
training budget, hyperparameter importance), from the database.

Every figure says how many runs and how many samples per score are behind it; diverged and failed runs are
drawn as their own bar ("div/fail"), never dropped. Histogram legends carry each family's median I' with its 95%
bootstrap interval, Fig. 3's panels EBGAN's effect size against that sub-grid (``analysis.table1.statistics``). Each
figure is written as PNG and SVG.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from analysis.db import load_interim_scores, load_sample_pngs
from analysis.table1 import statistics
from ebgan_core.table1.families import EBGAN, FAMILIES, GAN

BINS = 20
GRID_TILE, GRID_PAD, GRID_SCALE = 32, 2, 2  # layout of the stored sample grids (ebgan_core.images.grid_png)


def colors() -> dict[str, str]:
    """Every registered family's labels (EBGAN, EBGAN-PT, GAN, ...) with their colours."""
    return {label: color for family in FAMILIES for label, color in family.colors().items()}


def family_labels() -> tuple[str, ...]:
    """The registered families' main labels (EBGAN, GAN, ...)."""
    return tuple(family.label for family in FAMILIES)


def shown(label: str) -> str:
    """A label as figures show it: a family that is not the paper's says so."""
    others = {name for family in FAMILIES if not family.in_the_paper for name in family.colors()}
    return f"{label} (not in the paper)" if label in others else label


def _present_labels(trials: pd.DataFrame, candidates: tuple[str, ...] | None = None) -> list[str]:
    """The candidate labels (default: every family's labels) that have at least one trial, in the candidates'
    order."""
    return [label for label in candidates or tuple(colors()) if (trials["label"] == label).any()]


def _running_best(scores: np.ndarray) -> np.ndarray:
    """Best score so far along the last axis; NaN (no score yet) until the first finite one."""
    best = np.maximum.accumulate(np.where(np.isnan(scores), -np.inf, scores), axis=-1)
    return np.where(np.isinf(best), np.nan, best)


def histogram_percentages(scores: pd.Series, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Percent of runs per I' bin and percent that diverged or failed (NaN scores); together they add to 100."""
    total = len(scores)
    if total == 0:
        return np.zeros(len(edges) - 1), 0.0
    finite = scores.dropna().clip(edges[0], edges[-1])
    counts, _ = np.histogram(finite, bins=edges)
    return 100.0 * counts / total, 100.0 * (total - len(finite)) / total


def score_edges(frame: pd.DataFrame) -> np.ndarray:
    top = float(frame["i_prime"].max()) if frame["i_prime"].notna().any() else 1.0
    return np.linspace(0.0, max(top, 1e-6) * 1.0001, BINS + 1)


def samples_note(frame: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in frame["n_samples"].dropna()})
    return f"{'/'.join(map(str, counts)) or 'no'} samples per score"


def _legend(label: str, frame: pd.DataFrame) -> str:
    """``label (n=.., median I' m [low, high])``: diverged runs count as 0, failed ones are left out."""
    values = statistics.scored(frame)["score"].to_numpy()
    if len(values) == 0:
        return f"{shown(label)} (n={len(frame)})"
    low, high = statistics.bootstrap_ci(values, np.median)
    return f"{shown(label)} (n={len(frame)}, median {np.median(values):.2g} [{low:.2g}, {high:.2g}])"


def draw_histograms(ax: plt.Axes, groups: dict[str, pd.DataFrame], edges: np.ndarray, title: str) -> None:
    width = (edges[1] - edges[0]) / (len(groups) + 0.5)
    centers = (edges[:-1] + edges[1:]) / 2
    failure_x = edges[0] - 2 * (edges[1] - edges[0])
    palette = colors()
    for index, (label, frame) in enumerate(groups.items()):
        percent, failed = histogram_percentages(frame["i_prime"], edges)
        offset = (index - (len(groups) - 1) / 2) * width
        ax.bar(centers + offset, percent, width=width, color=palette.get(label), label=_legend(label, frame))
        ax.bar(failure_x + offset, failed, width=width, color=palette.get(label), hatch="//", alpha=0.6)
    ax.set_xticks([failure_x, *edges[:: max(1, BINS // 5)]])
    ax.set_xticklabels(["div/\nfail", *[f"{e:.2g}" for e in edges[:: max(1, BINS // 5)]]])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("I'")
    ax.set_ylabel("% of runs")
    ax.legend(fontsize=7)


def fig2_histograms(trials: pd.DataFrame) -> Figure | None:
    """Fig. 2: I' histograms, EBGAN vs GAN (and any other family's runs beside them): (a) all, (b) nLayerG,
    nLayerD <= 4, (c) <= 3."""
    main = trials[trials["label"].isin(family_labels())]
    if main.empty:
        return None
    edges = score_edges(main)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    for ax, (name, limit) in zip(axes, (("(a) all", 5), ("(b) nLayer[GD] <= 4", 4), ("(c) nLayer[GD] <= 3", 3)),
                                 strict=True):
        subset = main[(main["n_layer_g"] <= limit) & (main["n_layer_d"] <= limit)]
        groups = {label: subset[subset["label"] == label] for label in _present_labels(main, family_labels())}
        draw_histograms(ax, groups, edges, f"{name}: {len(subset)} runs")
    fig.suptitle(f"Fig. 2 - histogram of I' ({samples_note(main)})")
    return fig


def fig3_subgrids(trials: pd.DataFrame) -> Figure | None:
    """Fig. 3: the GAN grid split by (optimD, optimG, lr) into its sub-grids, each against the EBGAN histogram."""
    gan, ebgan = trials[trials["label"] == GAN.label], trials[trials["label"] == EBGAN.label]
    if gan.empty:
        return None
    keys = sorted(gan.groupby(["optim_d", "optim_g", "lr"]).groups, key=lambda k: (k[0], k[1], -k[2]))
    edges = score_edges(pd.concat([gan, ebgan]))
    columns = 4
    rows = int(np.ceil(len(keys) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes.flat, keys, strict=False):
        subgrid = gan[(gan["optim_d"] == key[0]) & (gan["optim_g"] == key[1]) & (gan["lr"] == key[2])]
        groups = {EBGAN.label: ebgan, GAN.label: subgrid} if not ebgan.empty else {GAN.label: subgrid}
        title = f"optimD={key[0]} optimG={key[1]} lr={key[2]:g}"
        if not ebgan.empty:
            effect = statistics.compare(statistics.scored(ebgan)["score"].to_numpy(),
                                        statistics.scored(subgrid)["score"].to_numpy())
            title += f"\nEBGAN vs this: Cliff's delta {effect['cliffs_delta']:+.2f}, p={effect['p_value']:.1g}"
        draw_histograms(ax, groups, edges, title)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"Fig. 3 - GAN sub-grids vs EBGAN ({len(gan)} GAN, {len(ebgan)} EBGAN runs; {samples_note(gan)})")
    return fig


def png_array(png: bytes) -> np.ndarray:
    """A stored sample grid as an array: [H, W] grey, or [H, W, 3] for a colour one (an image folder's)."""
    image = Image.open(io.BytesIO(png))
    return np.array(image.convert("RGB" if image.mode in ("RGB", "RGBA") else "L"))


def sample_panels(panels: list[tuple[bytes, str]]) -> Figure:
    """Stored sample grids (PNG bytes) side by side, each under its title."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5.6), squeeze=False, layout="constrained")
    for ax, (png, title) in zip(axes.flat, panels, strict=True):
        ax.imshow(png_array(png), cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(title, fontsize=8)
    return fig


def fig4_best_samples(trials: pd.DataFrame, url: str | None) -> Figure | None:
    """Fig. 4: the fixed-z samples of the best GAN, EBGAN and EBGAN-PT by I' (the paper's order), and of any other
    family's runs."""
    best = {}
    for label in sorted(colors(), key=lambda label: label != GAN.label):
        scored = trials[(trials["label"] == label) & trials["i_prime"].notna()]
        if not scored.empty:
            best[label] = scored.loc[scored["i_prime"].idxmax()]
    pngs = load_sample_pngs(url, [int(row["id"]) for row in best.values()])
    best = {label: row for label, row in best.items() if int(row["id"]) in pngs}
    if not best:
        return None
    fig = sample_panels([(pngs[int(row["id"])],
                          f"best {shown(label)}: I'={row['i_prime']:.2f} (of {(trials['label'] == label).sum()} runs)\n"
                          f"G {row['n_layer_g']}x{row['size_g']} D {row['n_layer_d']}x{row['size_d']} "
                          f"{row['optim_d']}/{row['optim_g']} lr={row['lr']:g} dropout={int(row['dropout_d'])}")
                         for label, row in best.items()])
    fig.suptitle(f"Fig. 4 - best configurations by I' ({samples_note(pd.DataFrame(best.values()))})")
    return fig


def fig9_margins(trials: pd.DataFrame, url: str | None) -> Figure | None:
    """Fig. 9: one row of fixed-z samples for each margin of the margin grid."""
    margins = trials[trials["label"].str.startswith("EBGAN m=") | ((trials["label"] == EBGAN.label)
                     & trials["sweep_grid"].isin(["margin"]))]
    margins = margins[margins["status"] == "completed"].sort_values("margin")
    pngs = load_sample_pngs(url, [int(i) for i in margins["id"]])
    margins = margins[margins["id"].isin(pngs)]
    if margins.empty:
        return None
    row_height = (GRID_TILE + GRID_PAD) * GRID_SCALE + GRID_PAD * GRID_SCALE
    fig, axes = plt.subplots(len(margins), 1, figsize=(9, 1.25 * len(margins) + 0.6), squeeze=False,
                             layout="constrained")
    for ax, (_, row) in zip(axes.flat, margins.iterrows(), strict=True):
        ax.imshow(png_array(pngs[int(row["id"])])[:row_height], cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(f"m = {row['margin']:g}: I' = {row['i_prime']:.2f}", fontsize=8, loc="left")
    fig.suptitle(f"Fig. 9 - samples per margin ({len(margins)} runs, {samples_note(margins)})")
    return fig


def ecdf_by_family(trials: pd.DataFrame) -> Figure | None:
    """Beyond the paper: the empirical CDF of I' per family (diverged/failed runs counted as I' = -inf)."""
    labels = _present_labels(trials)
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    for label in labels:
        scores = trials.loc[trials["label"] == label, "i_prime"]
        values = np.sort(scores.dropna().to_numpy())
        failed_share = 1 - len(values) / len(scores)
        y = failed_share + np.arange(1, len(values) + 1) / len(scores)
        ax.step(values, y, where="post", color=colors().get(label),
                label=f"{shown(label)} (n={len(scores)}, {100 * failed_share:.0f}% div/fail)")
    ax.set_xlabel("I'")
    ax.set_ylabel("share of runs with I' <= x")
    ax.legend(fontsize=8)
    ax.set_title(f"ECDF of I' per family ({samples_note(trials)})", fontsize=10)
    return fig


def best_found_curves(scores: np.ndarray, repeats: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Best I' after k configs tried, over random orders of the grid: (mean, 5th-95th percentile band [2, K])."""
    rng = np.random.default_rng(seed)
    runs = _running_best(np.array([rng.permutation(scores) for _ in range(repeats)]))
    return np.nanmean(runs, axis=0), np.nanpercentile(runs, [5, 95], axis=0)


def best_vs_budget(trials: pd.DataFrame) -> Figure | None:
    """Beyond the paper: best I' found vs number of configs tried; grid order bootstrapped, adaptive searches as run."""
    grid_labels = _present_labels(trials)
    if not grid_labels:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    for label in grid_labels:
        rows = trials[(trials["label"] == label) & (trials["search"] == "grid")]
        if rows.empty:
            continue
        mean, band = best_found_curves(rows["i_prime"].to_numpy(dtype=float))
        steps = np.arange(1, len(mean) + 1)
        ax.plot(steps, mean, color=colors().get(label), label=f"{shown(label)} grid, random order (n={len(rows)})")
        ax.fill_between(steps, band[0], band[1], color=colors().get(label), alpha=0.15)
    for (label, search), rows in trials[trials["search"] != "grid"].groupby(["label", "search"]):
        best = _running_best(rows.sort_values("finished_at")["i_prime"].to_numpy(dtype=float))
        ax.plot(np.arange(1, len(best) + 1), best, linestyle="--",
                color=colors().get(label), label=f"{shown(label)} {search} (n={len(rows)})")
    ax.set_xscale("log")
    ax.set_xlabel("configs tried")
    ax.set_ylabel("best I' so far")
    ax.legend(fontsize=8)
    ax.set_title(f"Best I' vs configs tried ({samples_note(trials)}; band: 5-95% over 200 orders)", fontsize=9)
    return fig


def importance_bars(trials: pd.DataFrame) -> Figure | None:
    """Beyond the paper: fANOVA importance of each Table 1 axis for I', one panel per family."""
    weights = {label: statistics.importance(trials, label) for label in _present_labels(trials)}
    weights = {label: w for label, w in weights.items() if not w.empty}
    if not weights:
        return None
    fig, axes = plt.subplots(1, len(weights), figsize=(max(6.0, 4.5 * len(weights)), 3.6), squeeze=False,
                             layout="constrained")
    for ax, (label, w) in zip(axes.flat, weights.items(), strict=True):
        ordered = w.sort_values()
        ax.barh(ordered.index, ordered.to_numpy(), color=colors().get(label))
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of I' variance (fANOVA)")
        ax.set_title(f"{shown(label)} ({(trials['label'] == label).sum()} runs)", fontsize=9)
    fig.suptitle("Which Table 1 settings matter (fANOVA, Optuna)")
    return fig


def budget_curves(trials: pd.DataFrame, interim: pd.DataFrame) -> Figure | None:
    """Beyond the paper: I' at the steps each run was scored at (interim and final), per family: the median with its
    95% bootstrap interval (left) and the share of runs with I' > 1 (right). Diverged runs count as 0 from the
    step they diverged at. Tells faster learning (curves that converge) from robustness (gaps that stay)."""
    labels = _present_labels(trials)
    if interim.empty or not labels:
        return None
    runs = trials[trials["label"].isin(labels) & trials["status"].isin(("completed", "diverged"))]
    final = runs.assign(step=runs["steps"], score=statistics.scored(runs)["score"])[["id", "label", "step", "score"]]
    along = interim.merge(runs[["id", "label", "status", "diverged_at_step"]], left_on="trial_id", right_on="id")
    along = along.assign(score=along["i_prime"].astype(float))[["id", "label", "step", "score"]]
    diverged = runs[runs["status"] == "diverged"].fillna({"diverged_at_step": -1})  # step unknown: from the start
    zeros = [{"id": r["id"], "label": r["label"], "step": s, "score": 0.0} for _, r in diverged.iterrows()
             for s in interim["step"].unique() if s > r["diverged_at_step"]]
    points = pd.concat([final, along, pd.DataFrame(zeros, columns=final.columns)], ignore_index=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for label in labels:
        part = points[points["label"] == label]
        steps = sorted(part["step"].unique())
        medians, bands, shares = [], [], []
        for step in steps:
            values = part.loc[part["step"] == step, "score"].to_numpy(dtype=float)
            medians.append(np.median(values))
            bands.append(statistics.bootstrap_ci(values, np.median))
            shares.append(100.0 * (values > 1.0).mean())
        color = colors().get(label)
        left.plot(steps, medians, marker="o", color=color, label=f"{shown(label)} ({part['id'].nunique()} runs)")
        left.fill_between(steps, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.15)
        right.plot(steps, shares, marker="o", color=color, label=shown(label))
    left.set(xlabel="training steps", ylabel="median I' (band: 95% bootstrap CI)")
    right.set(xlabel="training steps", ylabel="% of runs with I' > 1")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(f"I' against the training budget, same runs scored along the way ({samples_note(trials)})")
    return fig


def figure_makers(trials: pd.DataFrame, url: str | None) -> dict[str, Callable[[], Figure | None]]:
    """Table 1's figures of ``trials`` (from ``url``), by file name; each maker returns None where data is lacking."""
    grid = trials[trials["search"] == "grid"]  # the paper's figures are over grids; adaptive runs join best_vs_budget
    return {
        "fig2_histograms": lambda: fig2_histograms(grid),
        "fig3_gan_subgrids": lambda: fig3_subgrids(grid),
        "fig4_best_samples": lambda: fig4_best_samples(grid, url),
        "fig9_margins": lambda: fig9_margins(grid, url),
        "ecdf_i_prime": lambda: ecdf_by_family(grid),
        "best_vs_budget": lambda: best_vs_budget(trials),
        "i_prime_vs_steps": lambda: budget_curves(grid, load_interim_scores(url)),
        "importance_fanova": lambda: importance_bars(grid),
    }
