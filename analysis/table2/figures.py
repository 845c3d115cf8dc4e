"""Table 2's figures: Fig. 10 (EBGAN-LN's generations) and the test error against the steps."""

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
from analysis.table2.table import best_settings, budget_text
from ebgan_core.table2.families import EBGAN_LN, LADDER_FAMILIES

FIG10_RUNS = 4


def fig10_ebgan_ln_samples(trials: pd.DataFrame, url: str | None) -> Figure | None:
    """Fig. 10: generations of EBGAN-LN runs (different seeds and label counts), from the fixed noise."""
    runs = trials[(trials["label"] == EBGAN_LN.label) & (trials["status"] == "completed")]
    runs = runs.sort_values(["labels", "seed"], ascending=[False, True]).head(FIG10_RUNS)
    pngs = load_sample_pngs(url, [int(i) for i in runs["id"]])
    runs = runs[runs["id"].isin(pngs)]
    if runs.empty:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.8), squeeze=False, layout="constrained")
    for ax, (_, row) in zip(axes.flat, runs.iterrows(), strict=True):
        ax.imshow(np.array(Image.open(io.BytesIO(pngs[int(row["id"])])).convert("L")), cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(f"{int(row['labels'])} labels, seed {int(row['seed'])}: test error {row['test_error']:.2f}%",
                     fontsize=9)
    fig.suptitle(f"Fig. 10 - EBGAN-LN generations, 28x28 ({budget_text(runs)})", fontsize=10)
    return fig


def error_vs_steps(trials: pd.DataFrame, interim: pd.DataFrame) -> Figure | None:
    """Test error against training steps per model (its best setting), one panel per label count: median over
    seeds, with the range."""
    done = trials[(trials["status"] == "completed") & trials["test_error"].notna()]
    done = done[done["config_hash"].isin(best_settings(done)["config_hash"])]
    if done.empty or "test_error" not in interim or interim["test_error"].notna().sum() == 0:
        return None
    final = done[["id", "steps", "test_error"]].rename(columns={"id": "trial_id", "steps": "step"})
    points = pd.concat([interim.loc[interim["test_error"].notna(), ["trial_id", "step", "test_error"]], final])
    points = points.merge(done[["id", "label", "labels", "config_hash"]], left_on="trial_id", right_on="id")
    counts = sorted(points["labels"].unique())
    colors = {family.label: family.color for family in LADDER_FAMILIES}
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 4), squeeze=False, layout="constrained")
    for ax, count in zip(axes.flat, counts, strict=True):
        for (label, _), curve in points[points["labels"] == count].groupby(["label", "config_hash"]):
            by_step = curve.groupby("step")["test_error"]
            steps = by_step.median().index
            ax.plot(steps, by_step.median(), color=colors.get(label), label=f"{label} ({curve['trial_id'].nunique()}"
                    " runs)")
            ax.fill_between(steps, by_step.min(), by_step.max(), color=colors.get(label), alpha=0.15)
        ax.set(title=f"{int(count)} labels", xlabel="training steps", ylabel="test error (%)", yscale="log")
        ax.legend(fontsize=8)
    fig.suptitle(f"Semi-supervised test error against the steps: median over seeds, band = range "
                 f"({budget_text(done)})", fontsize=10)
    return fig


def figure_makers(trials: pd.DataFrame, url: str | None) -> dict[str, Callable[[], Figure | None]]:
    """Table 2's figures of ``trials`` (from ``url``), by file name: one set per profile, never pooled (suffixed by
    the profile where there are several)."""
    makers: dict[str, Callable[[], Figure | None]] = {}
    profiles = trials.groupby("profile", sort=False)
    for profile, runs in profiles:
        suffix = "" if len(profiles) == 1 else f"_{profile}"
        makers[f"fig10_ebgan_ln_samples{suffix}"] = lambda runs=runs: fig10_ebgan_ln_samples(runs, url)
        makers[f"table2_error_vs_steps{suffix}"] = lambda runs=runs: error_vs_steps(runs, load_interim_scores(url))
    return makers
