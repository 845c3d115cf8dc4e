"""The inverse of ``ebgan export``: a sweep's compact CSV (trials and interim scores; no images, no curves) loaded back
into a database, so that a committed reference can be explored, reported and queried without rerunning it.

``copies`` > 1 stores every row that many times under new keys (seeds shifted by the number of seeds in the export):
real rows at a study's full size, for measuring the tools at 7,175 runs."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ebgan_core.configs import CONFIG_TYPES
from sweeps.store.result_store import ResultStore
from sweeps.store.tables import SCORE_COLUMNS

ROW_FIELDS = ("diverged_at_step", "resumed_from_step", "seconds", "group_seconds", "group_size", "error", "search",
              "device", "judge_sha256", "code_version")  # as they are; timestamps and versions are parsed


class ExportFileError(ValueError):
    """The CSV is not an ``ebgan export`` of a sweep; the message says what is wrong."""


def _value(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _stamp(value: Any) -> Any:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _config(study: str, row: dict[str, Any], seed: int) -> dict[str, Any]:
    """The config fields of ``row`` as their dataclass types (CSV turns ints with gaps into floats); a field the
    export lacks, or leaves empty, takes its default (an export from before the field existed trained with it)."""
    defaults = CONFIG_TYPES[study]()
    config = {}
    for spec in dataclasses.fields(defaults):
        kind, value = type(getattr(defaults, spec.name)), _value(row.get(spec.name))
        if value is None:
            config[spec.name] = getattr(defaults, spec.name)
        else:
            config[spec.name] = kind(value) if kind is not bool else str(value) in ("True", "1", "1.0")
    return config | {"seed": seed}


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    names = (*SCORE_COLUMNS, "classes_present", "n_samples")
    return {name: _value(row[name]) for name in names if name in row and _value(row[name]) is not None}


def read_export(trials_csv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials and interim scores of an export (``<sweep>_trials.csv`` and its ``_interim_scores.csv``)."""
    if not trials_csv.is_file():
        raise ExportFileError(f"no file {trials_csv}; fix: pass a <sweep>_trials.csv written by `ebgan export`")
    trials = pd.read_csv(trials_csv)
    missing = {"config_hash", "seed", "status", "study", "sweep", "profile"} - set(trials.columns)
    if missing:
        raise ExportFileError(f"{trials_csv} lacks the columns {', '.join(sorted(missing))}; fix: pass a "
                           "<sweep>_trials.csv written by `ebgan export`")
    interim_csv = trials_csv.with_name(trials_csv.name.removesuffix("_trials.csv") + "_interim_scores.csv")
    interim = pd.read_csv(interim_csv) if interim_csv.is_file() else pd.DataFrame(columns=["config_hash", "seed"])
    return trials, interim


def import_export(trials_csv: Path, url: str | None, copies: int = 1, name: str | None = None,
                  limit: int | None = None) -> tuple[str, int]:
    """Store the export's trials (``copies`` times, under new seeds; the first ``limit`` of them, if given) as a
    sweep named ``name`` (default: the export's); returns the sweep's name and the rows stored."""
    if copies < 1:
        raise ExportFileError(f"copies must be >= 1, got {copies}")
    trials, interim = read_export(trials_csv)
    first = trials.iloc[0].to_dict()
    study, name = first["study"], name or first["sweep"] + ("" if copies == 1 else f"-x{copies}")
    seeds_in_export = int(trials["seed"].max()) + 1
    along = {key: group for key, group in interim.groupby(["config_hash", "seed"])}
    rows = []
    for copy in range(copies):
        for row in trials.to_dict("records"):
            steps = along.get((row["config_hash"], row["seed"]))
            rows.append({
                "study": study, "config": _config(study, row, int(row["seed"]) + copy * seeds_in_export),
                "status": row["status"], "scores": _scores(row), "steps": _value(row.get("steps_done")),
                **{field: _value(row.get(field)) for field in ROW_FIELDS},
                "library_versions": json.loads(row["library_versions"]),
                "interim_scores": {} if steps is None else {int(s["step"]): _scores(s) for s in
                                                            steps.to_dict("records")},
                "finished_at": _stamp(row["finished_at"]), "started_at": _stamp(row.get("started_at")),
            })
    rows = rows[:limit]
    store = ResultStore(url)
    try:
        sweep_id = store.open_sweep(name, "imported", first["profile"], first.get("search", "grid"),
                                    str(first["code_version"]), json.loads(first["library_versions"]),
                                    device=str(first.get("device")),
                                    settings={"imported_from": trials_csv.name, "copies": copies})
        store.set_total(sweep_id, len(rows))
        stored = sum(store.record(sweep_id, rows[i : i + 500]) for i in range(0, len(rows), 500))
    finally:
        store.close()
    return name, stored
