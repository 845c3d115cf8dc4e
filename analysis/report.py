"""One self-contained HTML page: figures, counts per family and status, shares above I' thresholds,
best configurations and the sweeps' metadata."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from analysis.db import load_sweeps, load_trials
from analysis.query import rank_trials

THRESHOLDS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", border=0, classes="t")


def share_above(trials: pd.DataFrame) -> pd.DataFrame:
    """Per family label: % of all its runs (failed and diverged included) with I' above each threshold."""
    rows = []
    for label, group in trials.groupby("label"):
        row = {"family": label, "runs": len(group)}
        row.update({f"I' > {t:g}": 100.0 * (group["i_prime"] > t).sum() / len(group) for t in THRESHOLDS})
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(url: str | None, figures_dir: Path, out: Path) -> Path:
    """Write the report page to ``out``, embedding the PNGs found in ``figures_dir``."""
    trials, sweeps = load_trials(url), load_sweeps(url)
    parts = ["<!doctype html><meta charset='utf-8'><title>ebgan-sweep report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}"
             ".t{border-collapse:collapse;font-size:12px}.t td,.t th{padding:2px 6px;border-bottom:1px solid #ddd}"
             "</style>", "<h1>ebgan-sweep report</h1>"]
    if trials.empty:
        parts.append("<p>The database holds no trials yet: run a sweep (<code>make sweep</code>).</p>")
    else:
        counts = trials.pivot_table(index="label", columns="status", values="id", aggfunc="count", fill_value=0)
        parts += ["<h2>Runs per family and status</h2>", _table(counts.reset_index()),
                  "<h2>Share of runs above I' thresholds (%)</h2>", _table(share_above(trials)),
                  "<h2>Best configurations by I'</h2>"]
        for label, group in trials.groupby("label"):
            parts += [f"<h3>{html.escape(label)}</h3>", _table(rank_trials(group, top=5))]
    for png in sorted(figures_dir.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        parts += [f"<h2>{html.escape(png.stem)}</h2>", f"<img alt='{html.escape(png.stem)}' "
                  f"src='data:image/png;base64,{data}'>"]
    if not sweeps.empty:
        parts += ["<h2>Sweeps</h2>", _table(sweeps)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out
