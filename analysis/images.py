"""The images study from the database: the convolutional runs (architecture ``conv``; ``sweeps.table1.images``) with
figures, statistics and a report section of their own, apart from Table 1's fully connected runs.

The score is I' on the pinned judge (samples resized to its 32x32), as Table 1's; a diverged run counts as I' = 0. The
question the statistics answer is Table 1's with convolutions: is the auto-encoder discriminator (EBGAN, EBGAN-PT)
more robust to its hyperparameters than DCGAN's? The presets figure sets the Appendix C presets side by side (Figs. 5
and 6: DCGAN beside EBGAN-PT; Figs. 12-14: EBGAN beside EBGAN-PT), each by its run of median I' over its seeds, so no
seed is picked for looking good. Runs of Section 4.4's noise-fed generator (the ``images-128`` grid: Fig. 7's deeper
models) get figures and statistics of their own, named ``..._noise_fed``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend
import pandas as pd
from matplotlib.figure import Figure

from analysis.db import load_interim_scores, load_sample_pngs
from analysis.table1 import statistics
from analysis.table1.figures import (
    budget_curves,
    draw_histograms,
    ecdf_by_family,
    sample_panels,
    samples_note,
    score_edges,
)

MODELS = ("DCGAN", "EBGAN", "EBGAN-PT")  # the study's labels, in the paper's order
REFERENCE = "DCGAN"  # the auto-encoder models are compared against it
PRESET_LR, PRESET_MARGIN, PRESET_PT = 0.0002, 10.0, {"DCGAN": 0.0, "EBGAN": 0.0, "EBGAN-PT": 0.1}
AXES = {"lr": "learning rate", "width": "width", "batch_norm_d": "batch norm in D", "margin": "margin",
        "pt_weight": "lambda_PT"}


def is_images(trials: pd.DataFrame) -> pd.Series:
    """Which trials are convolutional (the images study), by their architecture column (absent or null: Table 1's)."""
    if "architecture" not in trials:
        return pd.Series(False, index=trials.index)
    return trials["architecture"] == "conv"


GENERATOR_SOURCES = {"dcgan": "Appendix C", "noise-fed": "Section 4.4"}  # where the paper gives each generator


def generator_of(trials: pd.DataFrame) -> pd.Series:
    """Each trial's convolutional generator (its generator column; absent or null: Appendix C's, dcgan)."""
    if "generator" not in trials:
        return pd.Series("dcgan", index=trials.index)
    return trials["generator"].fillna("dcgan")


def on_folder(trials: pd.DataFrame) -> pd.Series:
    """Which trials trained on an image folder rather than MNIST (their dataset column; absent or null: MNIST)."""
    if "dataset" not in trials:
        return pd.Series(False, index=trials.index)
    return trials["dataset"].fillna("mnist") != "mnist"


FOLDER_NOTE = ("trained on an image folder without FID weights (--fid-weights): no I' (the judge knows MNIST's digits "
               "only) and no FID, so sample grids and training curves only")


def budget_note(runs: pd.DataFrame) -> str:
    """Image size, widths, steps, batch and samples per score of ``runs``."""
    sizes = "/".join(f"{int(s)}x{int(s)}" for s in sorted(runs["image_size"].unique()))
    widths = "/".join(str(int(w)) for w in sorted(runs["width"].unique()))
    steps = "/".join(str(int(s)) for s in sorted(runs["steps"].unique()))
    samples = int(runs["n_samples"].max()) if runs["n_samples"].notna().any() else "?"
    folder = on_folder(runs).all()
    return (f"{len(runs)} runs, {sizes} {'images of a folder' if folder else 'MNIST'}, widths {widths}, {steps} "
            f"generator updates of batch {'/'.join(str(int(b)) for b in sorted(runs['batch_size'].unique()))}"
            + ("" if folder else f", I' on {samples} samples"))


def presets(trials: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each model's runs of its Appendix C preset (lr 0.0002, the sweep's widest width, batch norm in D, margin 10,
    lambda_PT 0.1 for EBGAN-PT), every seed; models without such runs are left out."""
    found = {}
    for label in MODELS:
        runs = trials[trials["label"] == label]
        runs = runs[(runs["lr"] == PRESET_LR) & runs["batch_norm_d"].astype(bool)
                    & (runs["width"] == trials["width"].max()) & (runs["pt_weight"] == PRESET_PT[label])]
        if label != "DCGAN":
            runs = runs[runs["margin"] == PRESET_MARGIN]
        if not runs.empty:
            found[label] = runs
    return found


def median_run(runs: pd.DataFrame) -> pd.Series | None:
    """The completed run whose I' is the median of ``runs``' (the lower middle one of an even count)."""
    scored = runs[runs["status"] == "completed"].sort_values(["i_prime", "seed"])
    return None if scored.empty else scored.iloc[(len(scored) - 1) // 2]


def folder_samples_figure(trials: pd.DataFrame, url: str | None) -> Figure | None:
    """Runs on an image folder, which have no score: the presets' fixed-z samples side by side (seed 0, or the lowest
    seed stored)."""
    chosen = {label: runs.sort_values("seed").iloc[0] for label, runs in presets(trials).items()
              if (runs["status"] == "completed").any()}
    pngs = load_sample_pngs(url, [int(row["id"]) for row in chosen.values()])
    chosen = {label: row for label, row in chosen.items() if int(row["id"]) in pngs}
    if not chosen:
        return None
    fig = sample_panels([(pngs[int(row["id"])], f"{label} (Appendix C preset), seed {int(row['seed'])}")
                         for label, row in chosen.items()])
    scored = trials["frechet_distance"].notna().any()
    fig.suptitle(f"The convolutional presets on an image folder ({budget_note(trials)})\n"
                 + ("FID against the folder in the report" if scored else f"no scores: {FOLDER_NOTE}"), fontsize=9)
    return fig


def presets_figure(trials: pd.DataFrame, url: str | None, generator: str = "dcgan") -> Figure | None:
    """The presets side by side (DCGAN | EBGAN | EBGAN-PT), all on ``generator``: each one's median-I' run's fixed-z
    samples, titled with its I' over seeds."""
    chosen = {label: (runs, median_run(runs)) for label, runs in presets(trials).items()}
    chosen = {label: (runs, row) for label, (runs, row) in chosen.items() if row is not None}
    pngs = load_sample_pngs(url, [int(row["id"]) for _, row in chosen.values()])
    chosen = {label: pair for label, pair in chosen.items() if int(pair[1]["id"]) in pngs}
    if not chosen:
        return None
    panels = []
    for label, (runs, row) in chosen.items():
        scores = statistics.scored(runs)["score"]
        spread = f"{scores.mean():.2f} ± {scores.std():.2f} over {len(scores)} seeds" if len(scores) > 1 else \
            f"{scores.mean():.2f}, one seed"
        panels.append((pngs[int(row["id"])], f"{label} ({GENERATOR_SOURCES[generator]} preset): I' {spread}\n"
                       f"shown: seed {int(row['seed'])}, the median run (I' {row['i_prime']:.2f})"))
    fig = sample_panels(panels)
    figures = "Figs. 5-6 and 12-14" if generator == "dcgan" else "Fig. 7, Section 4.4's noise-fed generator"
    fig.suptitle(f"The convolutional presets side by side, as {figures} ({budget_note(trials)})")
    return fig


def histograms_figure(trials: pd.DataFrame) -> Figure | None:
    """I' histograms per model: (a) all runs, (b) with batch norm in D, (c) without."""
    runs = trials[trials["label"].isin(MODELS)]
    if runs.empty:
        return None
    edges = score_edges(runs)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    normed = runs["batch_norm_d"].astype(bool)
    for ax, (name, subset) in zip(axes, (("(a) all", runs), ("(b) batch norm in D", runs[normed]),
                                         ("(c) no batch norm in D", runs[~normed])), strict=True):
        groups = {label: subset[subset["label"] == label] for label in MODELS if (runs["label"] == label).any()}
        draw_histograms(ax, groups, edges, f"{name}: {len(subset)} runs")
    fig.suptitle(f"The images grid: histogram of I' per model ({samples_note(runs)}; {budget_note(runs)})")
    return fig


def study_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """The runs the study's distributions are over: those of ``images`` sweeps where there are any (more seeds of the
    presets, from ``images-presets`` sweeps, would weigh the presets more), else every grid run."""
    grid = trials[trials["search"] == "grid"]
    of_grid = grid[grid["sweep_grid"] == "images"]
    return grid if of_grid.empty else of_grid


def figure_makers(trials: pd.DataFrame, url: str | None) -> dict[str, Callable[[], Figure | None]]:
    """The images study's figures of ``trials`` (convolutional runs only), by file name: on MNIST, for each generator,
    the presets over every seed stored and the distributions over the grid's runs (``study_runs``); on an image folder
    the presets' samples."""
    folder = trials[on_folder(trials)]
    trials = trials.drop(folder.index)
    makers = {"images_folder_samples": lambda: folder_samples_figure(folder, url)} if not folder.empty else {}
    if trials.empty:
        return makers
    for generator, runs in trials.groupby(generator_of(trials), sort=True):
        suffix = "" if generator == "dcgan" else "_" + generator.replace("-", "_")
        study = study_runs(runs)
        makers |= {
            f"images_presets{suffix}": lambda runs=runs, generator=generator: presets_figure(
                runs[runs["search"] == "grid"], url, generator),
            f"images_histograms{suffix}": lambda study=study: histograms_figure(study),
            f"images_ecdf_i_prime{suffix}": lambda study=study: ecdf_by_family(study),
            f"images_i_prime_vs_steps{suffix}": lambda study=study: budget_curves(study, load_interim_scores(url)),
        }
    return makers


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """EBGAN and EBGAN-PT against DCGAN: over all their runs and within each setting of the shared axes (learning rate,
    width, batch norm in D): the probability that a random run of the model beats one of DCGAN, Cliff's delta and the
    Mann-Whitney p."""
    scored = statistics.scored(runs)
    reference = scored[scored["label"] == REFERENCE]
    rows = []
    for label in MODELS[1:]:
        model = scored[scored["label"] == label]
        if model.empty or reference.empty:
            continue
        rows.append({"comparison": f"{label} vs {REFERENCE} (all)",
                     **statistics.compare(model["score"].to_numpy(), reference["score"].to_numpy())})
        for axis in ("lr", "width", "batch_norm_d"):
            for value in sorted(reference[axis].unique()):
                a, b = model[model[axis] == value], reference[reference[axis] == value]
                if len(a) and len(b):
                    shown = ("on" if value else "off") if axis == "batch_norm_d" else f"{value:g}"
                    rows.append({"comparison": f"{label} vs {REFERENCE}, {AXES[axis]} {shown}",
                                 **statistics.compare(a["score"].to_numpy(), b["score"].to_numpy())})
    return pd.DataFrame(rows).rename(columns={"n_a": "runs", "n_b": "DCGAN runs", "superiority": "P(model > DCGAN)",
                                              "cliffs_delta": "Cliff's delta", "p_value": "Mann-Whitney p"})


def axis_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Median I' of each model at each value of each axis it varies (diverged runs as 0): where a model's score
    depends on its settings."""
    scored = statistics.scored(runs)
    rows = []
    for axis, name in AXES.items():
        for label in MODELS:
            model = scored[scored["label"] == label]
            if model[axis].nunique() < 2:
                continue
            medians = model.groupby(axis)["score"].median()
            rows.append({"axis": name, "model": label, **{
                (("on" if v else "off") if axis == "batch_norm_d" else f"{v:g}"): round(m, 2)
                for v, m in medians.items()}})
    return pd.DataFrame(rows)


def report_section(trials: pd.DataFrame, table: Callable[[pd.DataFrame], str],
                   statistics_section: Callable[[pd.DataFrame], list[str]]) -> list[str]:
    """The report's section on the images study, per profile (``table`` renders a DataFrame, ``statistics_section``
    gives Table 1's per-label statistics); empty without its runs."""
    parts = []
    folder = trials[on_folder(trials)]
    for (dataset, profile), runs in folder.groupby(["dataset", "profile"], sort=False):
        parts.append(f"<h2>Images from a folder (listing {html.escape(dataset.removeprefix('folder-')[:12])}), "
                     f"profile <code>{html.escape(profile)}</code>: {html.escape(budget_note(runs))}</h2>")
        if runs["frechet_distance"].isna().all():
            parts.append(f"<p class='warn'>These runs were {html.escape(FOLDER_NOTE)}: see the figure "
                         "images_folder_samples and the explore page.</p>")
            continue
        table_rows = [{"model": label, "runs": len(group), "scored": int(group["frechet_distance"].notna().sum()),
                       "median FID": group["frechet_distance"].median(), "best FID": group["frechet_distance"].min()}
                      for label, group in runs.groupby("label")]
        parts += [table(pd.DataFrame(table_rows).round(3)),
                  f"<p class='note'>FID against the folder's images from the InceptionV3 weights with sha256 "
                  f"{html.escape(str(runs['judge_sha256'].iloc[0])[:12])}... (lower is better; a diverged run has "
                  "none).</p>"]
    trials = trials.drop(folder.index)
    for (generator, profile), runs in trials.groupby([generator_of(trials), "profile"], sort=False):
        runs = study_runs(runs)
        model = "" if generator == "dcgan" else f", Section 4.4's {generator} generator"
        parts += [f"<h2>Images (convolutional{html.escape(model)}), profile <code>{html.escape(profile)}</code>: "
                  f"{html.escape(budget_note(runs))}</h2>", *statistics_section(runs)]
        comparison = comparison_table(runs)
        if not comparison.empty:
            parts += ["<h3>The auto-encoder discriminator against DCGAN's, overall and per setting</h3>",
                      table(comparison.round(3))]
        axes = axis_table(runs)
        if not axes.empty:
            parts += ["<h3>Median I' per setting</h3>", table(axes.fillna("")),
                      "<p class='note'>Diverged runs count as I' = 0. A model whose medians spread widely across a "
                      "setting depends on it.</p>"]
    return parts


def settings_text(row: pd.Series) -> str:
    """A convolutional run's network settings in one line."""
    return (f"conv {int(row['image_size'])}x{int(row['image_size'])}, width {int(row['width'])}, "
            f"batch norm in D {'on' if row['batch_norm_d'] else 'off'}, {row['optim_d']}/{row['optim_g']}, "
            f"lr {row['lr']:g}")

