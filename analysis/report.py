"""One self-contained HTML page a researcher can share: the budget behind the numbers, the statistics with their
intervals, the figures (drawn here when none are beside it), the best runs with their sample grids, and the
sweeps' settings and provenance, laid out to fit the page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from analysis.db import is_lucic, load_sample_pngs, load_sweeps, load_trials
from analysis.figures import write_figures
from analysis.images import is_images
from analysis.images import report_section as images_section
from analysis.images import settings_text as images_settings
from analysis.lucic import report_section
from analysis.progress import completeness_note, sweep_progress
from analysis.table1 import statistics
from analysis.table1.figures import shown
from analysis.table2.table import budget_text, table2
from ebgan_core.table1.families import EBGAN, FAMILIES, GAN

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.note{color:#555;font-size:13px}.warn{color:#b22222;font-size:14px}.scroll{overflow-x:auto}
table.t{border-collapse:collapse;font-size:12px;margin:.4em 0}
table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
table.t th{background:#f4f4f4}img{max-width:100%}
.runs{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.run{border:1px solid #ddd;border-radius:6px;padding:8px;font-size:12px}
.run img{width:100%;image-rendering:pixelated}
"""
BEST_RUNS = 4


def _table(frame: pd.DataFrame) -> str:
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-", border=0, classes="t",
                         escape=True)
    return f"<div class='scroll'>{body}</div>"


def _interval(value: float, low: float, high: float, percent: bool = False) -> str:
    scale, unit = (100.0, "%") if percent else (1.0, "")
    if pd.isna(low) or pd.isna(high):  # one run: no interval
        return f"{scale * value:.3g}{unit}"
    return f"{scale * value:.3g}{unit} [{scale * low:.3g}, {scale * high:.3g}]"


def budget_line(sweeps: pd.DataFrame, profile: str) -> str:
    """The training budget of a profile's sweeps in words: widths, steps, batch, samples per score, precision."""
    for settings in sweeps.loc[sweeps["profile"] == profile, "settings"]:
        values = json.loads(settings).get("profile_settings") or {}
        if values:
            return (f"widths Table 1 / {values['width_divisor']}, {values['steps']} steps at batch "
                    f"{values['batch_size']}, I' on {values['score_samples']} samples, {values['precision']}")
    return "budget not recorded"


def statistics_section(trials: pd.DataFrame) -> list[str]:
    """Per family: median and mean I' and shares above thresholds with 95% CIs; EBGAN vs GAN effect sizes; seed
    spread. ``trials`` come from one profile (one budget)."""
    summary = statistics.family_summary(trials)
    rows = []
    for record in summary.to_dict("records"):
        row = {"family": shown(record["label"]), "runs": record["runs"], "diverged": record["diverged"],
               "median I' [95% CI]": _interval(record["median"], record["median_low"], record["median_high"]),
               "mean I' [95% CI]": _interval(record["mean"], record["mean_low"], record["mean_high"])}
        for threshold in statistics.THRESHOLDS:
            key = f"share_above_{threshold:g}"
            row[f"I' > {threshold:g} [95% CI]"] = _interval(record[key], record[f"{key}_low"], record[f"{key}_high"],
                                                           percent=True)
        rows.append(row)
    parts = ["<h3>I' per family</h3>", _table(pd.DataFrame(rows)),
             "<p class='note'>Diverged runs count as I' = 0, failed runs are left out; intervals: percentile "
             "bootstrap (median, mean) and Wilson (shares).</p>"]
    labels = set(trials["label"])
    if {EBGAN.label, GAN.label} <= labels:
        comparison = statistics.family_comparison(trials)
        comparison = comparison.rename(columns={"n_a": "EBGAN runs", "n_b": "GAN runs",
                                                "superiority": "P(EBGAN > GAN)", "cliffs_delta": "Cliff's delta",
                                                "p_value": "Mann-Whitney p"})
        parts += ["<h3>EBGAN against GAN, overall and per Fig. 3 sub-grid</h3>", _table(comparison)]
    spread = statistics.seed_spread(trials)
    if not spread.empty:
        parts += ["<h3>Seed spread</h3>", _table(spread)]
    return parts


def _settings_text(settings: str) -> str:
    values = json.loads(settings)
    values.pop("profile_settings", None)
    return "; ".join(f"{k}={v}" for k, v in values.items() if v is not None)


def _versions_text(versions: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in json.loads(versions).items())


def sweeps_table(sweeps: pd.DataFrame) -> pd.DataFrame:
    """The sweeps with settings and library versions as readable text, not JSON."""
    return pd.DataFrame({"sweep": sweeps["name"], "grid": sweeps["grid"], "profile": sweeps["profile"],
                         "search": sweeps["search"], "code": sweeps["code_version"], "device": sweeps["device"],
                         "created": sweeps["created_at"].astype(str).str.slice(0, 16),
                         "settings": sweeps["settings"].map(_settings_text),
                         "libraries": sweeps["library_versions"].map(_versions_text)})


def best_runs_section(trials: pd.DataFrame, url: str | None) -> list[str]:
    """The best runs of each family as cards: the fixed-z sample grid, I' and the settings in one line."""
    parts = []
    for label, group in trials[trials["i_prime"].notna()].groupby("label"):
        best = group.sort_values("i_prime", ascending=False).head(BEST_RUNS)
        pngs = load_sample_pngs(url, [int(i) for i in best["id"]])
        cards = []
        for _, row in best.iterrows():
            png = pngs.get(int(row["id"]))
            image = f"<img alt='samples' src='data:image/png;base64,{base64.b64encode(png).decode()}'>" if png else ""
            if row.get("architecture") == "conv":
                settings = images_settings(row)
            else:
                settings = (f"G {row['n_layer_g']}x{row['size_g']}, D {row['n_layer_d']}x{row['size_d']}, "
                            f"{row['optim_d']}/{row['optim_g']}, lr {row['lr']:g}, "
                            f"dropout {'on' if row['dropout_d'] else 'off'}")
            name_parts = FAMILIES[row["family"]].name_parts
            if name_parts is not None:
                settings += ", " + ", ".join(name_parts(row))
            fid = "-" if pd.isna(row["frechet_distance"]) else f"{row['frechet_distance']:.3g}"
            classes = "-" if pd.isna(row["classes_present"]) else int(row["classes_present"])
            cards.append(f"<div class='run'>{image}<b>I' {row['i_prime']:.2f}</b> (FID {fid}, {classes} classes, "
                         f"seed {row['seed']}, {html.escape(row['sweep'])})<br>{html.escape(settings)}</div>")
        parts += [f"<h3>{html.escape(label)} ({len(group)} scored runs)</h3>",
                  f"<div class='runs'>{''.join(cards)}</div>"]
    return parts


def table2_section(trials: pd.DataFrame) -> list[str]:
    """Table 2 per semi-supervised profile (its budget in the heading), beside the paper's numbers."""
    parts = []
    for profile, runs in trials.groupby("profile", sort=False):
        parts += [f"<h2>Table 2, profile <code>{html.escape(profile)}</code>: {html.escape(budget_text(runs))}</h2>",
                  _table(table2(runs)),
                  "<p class='note'>Test error (%) on the 10,000 test images, mean ± std over seeds (n); where a "
                  "grid tried several settings of a model, the one with the lowest mean is shown (best of k). "
                  "MLP: the same encoder trained on the labels alone.</p>"]
    return parts


def write_report(url: str | None, figures_dir: Path, out: Path) -> Path:
    """Write the report page to ``out``, embedding the PNGs of ``figures_dir`` (drawn there first if it has none)."""
    trials, sweeps = load_trials(url), load_sweeps(url)
    semi_supervised = load_trials(url, study="table2")
    parts = ["<!doctype html><meta charset='utf-8'><meta name='viewport' content='width=device-width'>",
             f"<title>ebgan-sweep report</title><style>{STYLE}</style>", "<h1>ebgan-sweep report</h1>"]
    if trials.empty and semi_supervised.empty:  # (before the study's runs are set apart below)
        parts.append("<p>The database holds no trials yet: run a sweep (<code>make sweep</code>).</p>")
    incomplete = completeness_note(sweep_progress(url))
    if incomplete:
        parts.append(f"<p class='warn'>Incomplete: {html.escape(incomplete)}. Groups run in a seeded random order, so "
                     "what is stored is an unbiased sample of each grid, but a smaller one.</p>")
    lucic = trials[is_lucic(trials["sweep_grid"])] if not trials.empty else trials
    trials = trials.drop(lucic.index) if not trials.empty else trials
    conv = trials[is_images(trials)] if not trials.empty else trials
    table1_runs = trials.drop(conv.index) if not trials.empty else trials
    if not table1_runs.empty:
        grid = table1_runs[table1_runs["search"] == "grid"]
        parts.append(f"<p class='note'>{len(table1_runs)} Table 1 runs in {table1_runs['sweep'].nunique()} sweeps. "
                     "Every number below is tied to its training budget; budgets are never pooled.</p>")
        for profile, runs in grid.groupby("profile", sort=False):
            parts += [f"<h2>Profile <code>{html.escape(profile)}</code>: {html.escape(budget_line(sweeps, profile))}"
                      "</h2>", *statistics_section(runs)]
    parts += images_section(conv, _table, statistics_section)
    parts += report_section(lucic, _table)
    if not semi_supervised.empty:
        parts += table2_section(semi_supervised)
    if not (trials.empty and lucic.empty and semi_supervised.empty):
        drawn = ""
        if not any(figures_dir.glob("*.png")):
            write_figures(url, figures_dir)
            drawn = f" (drawn for this report into {html.escape(str(figures_dir))}: none were there)"
        parts.append(f"<h2>Figures</h2><p class='note'>From {html.escape(str(figures_dir))}{drawn}; each states the "
                     "runs and samples behind it.</p>")
        for png in sorted(figures_dir.glob("*.png"), key=lambda p: (not p.stem.startswith("fig"), p.stem)):
            data = base64.b64encode(png.read_bytes()).decode()
            parts += [f"<h3>{html.escape(png.stem)}</h3>",
                      f"<img alt='{html.escape(png.stem)}' src='data:image/png;base64,{data}'>"]
    if not trials.empty:
        # convolutional runs apart from the fully connected ones of the same family
        trials = trials.assign(label=trials["label"].where(~is_images(trials), trials["label"] + " (conv)"))
        parts += ["<h2>Best runs and their samples</h2>", *best_runs_section(trials, url)]
        counts = trials.pivot_table(index="label", columns="status", values="id", aggfunc="count", fill_value=0)
        parts += ["<h2>Runs per family and status</h2>", _table(counts.reset_index())]
    if not sweeps.empty:
        parts += ["<h2>Sweeps</h2>", _table(sweeps_table(sweeps))]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out
