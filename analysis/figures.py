"""Every figure the database supports, for both studies, as PNG and SVG files (``ebgan figures``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend
from matplotlib.figure import Figure

from analysis.db import is_lucic, load_trials
from analysis.images import figure_makers as images_figures
from analysis.images import is_images
from analysis.lucic import figure_makers as lucic_figures
from analysis.progress import completeness_note, sweep_progress
from analysis.table1.figures import figure_makers as table1_figures
from analysis.table2.figures import figure_makers as table2_figures


def write_figures(url: str | None, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Draw every figure the database can support into ``out_dir``; returns (files written, notes on skipped ones)."""
    trials, semi_supervised = load_trials(url), load_trials(url, study="table2")
    if trials.empty and semi_supervised.empty:
        return [], ["the database holds no trials yet; run a sweep first"]
    out_dir.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[], Figure | None]] = {}
    if not trials.empty:
        lucic, conv = is_lucic(trials["sweep_grid"]), is_images(trials)
        if not (lucic | conv).all():
            makers |= table1_figures(trials[~lucic & ~conv], url)
        if lucic.any():
            makers |= lucic_figures(trials[lucic])
        if (conv & ~lucic).any():
            makers |= images_figures(trials[conv & ~lucic], url)
    if not semi_supervised.empty:
        makers |= table2_figures(semi_supervised, url)
    incomplete = completeness_note(sweep_progress(url))
    written, skipped = [], []
    for name, make in makers.items():
        figure = make()
        if figure is None:
            skipped.append(f"{name}: no data for it in the database yet")
            continue
        if incomplete:  # a partial sweep is a seeded random sample of its grid; say how much of it
            figure.text(0.005, 0.002, f"incomplete: {incomplete}", fontsize=7, color="firebrick", va="bottom")
        for suffix in ("png", "svg"):
            path = out_dir / f"{name}.{suffix}"
            figure.savefig(path, dpi=110)
            written.append(path)
        plt.close(figure)
    return written, skipped
