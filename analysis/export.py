"""A compact, shareable copy of a sweep: its trials and their interim scores as CSV (no images, no curves)."""

from __future__ import annotations

from pathlib import Path

from analysis.db import AnalysisError, load_interim_scores, load_trials

DROPPED = ("id", "sweep_id", "class_histogram", "label", "sweep_grid", "config")  # database keys, derivable or bulky


def export_sweep(url: str | None, sweep: str, out: Path) -> list[Path]:
    """Write ``<out>/<sweep>_trials.csv`` (one row per trial, every config field, status, scores, provenance) and
    ``<out>/<sweep>_interim_scores.csv`` (config hash, seed, step and scores); returns the paths."""
    trials = load_trials(url, sweep)
    if trials.empty:  # a semi-supervised sweep: its config fields are columns, Table 1's empty ones are left out
        trials = load_trials(url, sweep, study="table2").dropna(axis=1, how="all")
    if trials.empty:
        raise AnalysisError(f"no trials in sweep {sweep!r}; fix: pick a name from `ebgan report`'s Sweeps table")
    out.mkdir(parents=True, exist_ok=True)
    trials_path, interim_path = out / f"{sweep}_trials.csv", out / f"{sweep}_interim_scores.csv"
    keys = trials[["id", "config_hash", "seed"]]
    trials.drop(columns=[c for c in DROPPED if c in trials.columns]).sort_values(["config_hash", "seed"]).to_csv(
        trials_path, index=False)
    interim = load_interim_scores(url).merge(keys, left_on="trial_id", right_on="id")
    interim.drop(columns=["trial_id", "id"]).sort_values(["config_hash", "seed", "step"]).to_csv(
        interim_path, index=False)
    return [trials_path, interim_path]
