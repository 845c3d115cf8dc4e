"""What the explore page shows, read from the database: a study's runs as columns (every config axis that varies,
the family, the status and the score), one run's details (settings, curves, scores and sample grids along training),
and the sweeps' progress."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd
from sqlalchemy import Engine, inspect, text

from analysis.db import is_lucic, load_trials
from analysis.images import FOLDER_NOTE, on_folder
from analysis.progress import sweep_progress
from sweeps.studies import STUDIES

FOLDER_SCORE_NOTE = ("trained on an image folder: scored by the FID against the folder (frechet_distance, lower is "
                     "better), not by I' (the judge knows MNIST's digits only)")
HIDDEN = {"score_samples", "data_seed"}  # config fields that are measurement settings, not axes of a study
CATEGORY_LIMIT = 12  # a numeric axis with at most this many values is drawn as ordered categories (a grid's values)
TABLE_COLUMNS = ("steps_done", "seconds", "diverged_at_step", "sweep")  # besides axes and score, per run


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy types unwrapped, NaN as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _natural(value: Any) -> tuple:
    """Sort key: numbers by value, strings with their numbers by value ("EBGAN m=2" before "EBGAN m=12")."""
    if not isinstance(value, str):
        return (0, value)
    return (1, *((0, float(part)) if i % 2 else (1, part) for i, part in
                 enumerate(re.split(r"(\d+(?:\.\d+)?)", value))))


def _axis(name: str, values: pd.Series) -> dict[str, Any]:
    """An axis of the parallel coordinates: categorical (strings, booleans, few numeric values: drawn as evenly spaced
    categories in sorted order) or numeric."""
    distinct = values.dropna().unique()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric or len(distinct) <= CATEGORY_LIMIT:
        ordered = sorted(distinct, key=_natural)
        return {"name": name, "categorical": True, "categories": [_plain(v) for v in ordered]}
    return {"name": name, "categorical": False}


def folder_notes(trials: pd.DataFrame) -> list[str]:
    """What the page says of runs on an image folder, which have no I': how many have the FID instead, how many no
    score at all."""
    folder = trials[on_folder(trials)]
    scored = int(folder["frechet_distance"].notna().sum())
    notes = [f"{scored} runs {FOLDER_SCORE_NOTE}"] if scored else []
    return notes + ([f"{len(folder) - scored} runs {FOLDER_NOTE}"] if len(folder) > scored else [])


def run_note(trial: Any) -> str | None:
    """What the page says of one run whose score is missing for a reason other than failure: an image folder's."""
    if (trial.get("dataset") or "mnist") == "mnist":
        return None
    return FOLDER_SCORE_NOTE if trial.get("frechet_distance") is not None else FOLDER_NOTE


def study_runs(url: str | None, study: str) -> dict[str, Any]:
    """Every run of ``study``: its axes (``label`` first, the config fields that vary, ``status``; the score last),
    the runs as columns (``id`` and ``TABLE_COLUMNS`` besides) and notes on runs without the study's score."""
    spec = STUDIES[study]
    trials = load_trials(url, study=study)
    if trials.empty:
        return {"study": study, "score": spec.score, "higher_is_better": spec.higher_is_better, "axes": [],
                "columns": {}, "count": 0, "notes": []}
    fields = [f for f in spec.config_type().to_dict() if f not in HIDDEN and f in trials.columns]
    varying = [f for f in fields if trials[f].nunique(dropna=True) > 1]
    # Lucic et al.'s study: the loss as a categorical axis, and its score (analysis.lucic); an image folder's: the FID
    lucic = "loss" in trials and bool(is_lucic(trials["sweep_grid"]).any())
    extra = ["loss"] if lucic else []
    notes = folder_notes(trials)
    by_fid = lucic or bool(trials.loc[on_folder(trials), "frechet_distance"].notna().any())
    scores = ["frechet_distance"] if by_fid and spec.score != "frechet_distance" else []
    axes = [_axis("label", trials["label"]), *(_axis(f, trials[f]) for f in [*extra, *varying, *scores]),
            _axis("status", trials["status"])]
    names = ["id", "label", *extra, *varying, *scores, "status", spec.score, *TABLE_COLUMNS]
    columns = {name: [_plain(v) for v in trials[name].tolist()] for name in dict.fromkeys(names)}
    return {"study": study, "score": spec.score, "higher_is_better": spec.higher_is_better, "axes": axes,
            "columns": columns, "count": len(trials), "notes": notes}


def studies_present(engine: Engine) -> list[str]:
    """The studies the database holds runs of, Table 1 first."""
    with engine.connect() as connection:
        if not {"sweeps", "trials"} <= set(inspect(connection).get_table_names()):
            return []
        columns = {c["name"] for c in inspect(connection).get_columns("trials")}
        if "study" not in columns:  # a database from before studies holds Table 1 trials only
            return ["table1"] if connection.execute(text("select 1 from trials limit 1")).scalar() else []
        present = set(connection.execute(text("select distinct study from trials")).scalars())
    return [name for name in STUDIES if name in present]


def run_details(engine: Engine, trial_id: int) -> dict[str, Any] | None:
    """One run: its settings and results, training curves, scores along training, the steps it has a sample grid
    at (``final`` for the end) and a note where its score is missing by design; None if there is no such run."""
    with engine.connect() as connection:
        trial = connection.execute(text("select t.*, s.name as sweep, s.profile as profile from trials t join sweeps s "
                                        "on s.id = t.sweep_id where t.id = :id"), {"id": trial_id}).mappings().first()
        if trial is None:
            return None
        curves = connection.execute(text("select curves from curves where trial_id = :id"), {"id": trial_id}).scalar()
        interim = connection.execute(text("select * from interim_scores where trial_id = :id order by step"),
                                     {"id": trial_id}).mappings().all()
        tables = set(inspect(connection).get_table_names())
        grid_steps = [] if "interim_samples" not in tables else connection.execute(text(
            "select step from interim_samples where trial_id = :id order by step"), {"id": trial_id}).scalars().all()
        final = connection.execute(text("select 1 from samples where trial_id = :id"), {"id": trial_id}).scalar()
    study = trial["study"]
    score = STUDIES[study].score
    config = json.loads(trial["config"]) if trial["config"] else {}
    results = {k: _plain(trial[k]) for k in ("status", score, "steps_done", "diverged_at_step", "seconds",
                                             "group_size", "resumed_from_step", "error", "sweep", "profile",
                                             "code_version", "device")}
    along = [{"step": row["step"], "score": _plain(row[score])} for row in interim]
    if trial[score] is not None:
        along.append({"step": trial["steps_done"], "score": _plain(trial[score])})
    sample_steps = [*grid_steps, *(["final"] if final else [])]
    return {"id": trial_id, "study": study, "score": score, "config": config, "results": results,
            "curves": json.loads(curves) if curves else {}, "along": along, "sample_steps": sample_steps,
            "final_step": trial["steps_done"], "note": run_note(trial)}


def sample_png(engine: Engine, trial_id: int, step: str) -> bytes | None:
    """A run's sample grid at ``step`` (an interim scoring step, or ``final``) as PNG bytes; None if not stored."""
    with engine.connect() as connection:
        if step == "final":
            png = connection.execute(text("select png from samples where trial_id = :id"), {"id": trial_id}).scalar()
        elif "interim_samples" in set(inspect(connection).get_table_names()):
            png = connection.execute(text("select png from interim_samples where trial_id = :id and step = :step"),
                                     {"id": trial_id, "step": int(step)}).scalar()
        else:
            png = None
    return None if png is None else bytes(png)


def runs_version(engine: Engine) -> tuple[int, str | None]:
    """What changes whenever a run is stored or stored again (a failed config rerun): the number of trials and the
    latest time one finished."""
    with engine.connect() as connection:
        if "trials" not in set(inspect(connection).get_table_names()):
            return (0, None)
        count, latest = connection.execute(text("select count(*), max(finished_at) from trials")).one()
    return (int(count), None if latest is None else str(latest))


def progress(url: str | None) -> dict[str, Any]:
    """The sweeps' progress (``analysis.progress.sweep_progress``) as JSON-safe rows, and the number of runs stored,
    which the page compares to decide whether to reload."""
    frame = sweep_progress(url)
    rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    stored = int(frame["stored"].sum() + frame["failed"].sum()) if not frame.empty else 0
    return {"sweeps": rows, "runs": stored}
