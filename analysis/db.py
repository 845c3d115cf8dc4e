"""Read-only access to the results database, into pandas DataFrames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, bindparam, create_engine, inspect, text

from ebgan_core.table1.families import FAMILIES
from ebgan_core.table2.families import LADDER_FAMILIES
from sweeps.store.connection import DatabaseUrlError, create_database_engine, database_url, readonly_sqlite_url

MISSING_HINT = "fix: run `make sweep` first, or pass --db URL"


class AnalysisError(RuntimeError):
    """The database is missing or unreadable; the message says what to do."""


def connect_readonly(url: str | None = None) -> Engine:
    """An engine that cannot write: SQLite files open with mode=ro; other servers rely on the URL's role."""
    url = database_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise AnalysisError(f"database {path} not found; {MISSING_HINT}")
        return create_engine(readonly_sqlite_url(path))
    try:
        return create_database_engine(url)
    except DatabaseUrlError as exc:
        raise AnalysisError(str(exc)) from None


def _has_tables(engine: Engine) -> bool:
    try:
        return {"sweeps", "trials"} <= set(inspect(engine).get_table_names())
    except Exception as exc:  # a corrupt file raises a driver-specific error
        raise AnalysisError(f"cannot read database {engine.url}: {exc.__class__.__name__}; {MISSING_HINT}") from None


SAMPLED_GRID = "lucic"  # the phase-1 grid's name (sweeps.table1.lucic.GRID), as its sweeps store it
BEST_OF_PREFIX = "best-of:"  # phase-3 sweeps store their grid as best-of:<phase-1 sweep>


def is_lucic(sweep_grids: pd.Series) -> pd.Series:
    """Which trials belong to a Lucic et al. study (either phase), by their sweep's grid."""
    return (sweep_grids == SAMPLED_GRID) | sweep_grids.str.startswith(BEST_OF_PREFIX)


def family_label(row: pd.Series) -> str:
    """The label its family's entry gives a trial: GAN, EBGAN, EBGAN-PT, or EBGAN m=<margin> for the paper's Table 1
    families; LN, EBGAN-LN or MLP (Table 2). A family no entry names is an AnalysisError saying how to register it."""
    try:
        if row.get("study", "table1") == "table2":
            return LADDER_FAMILIES[row["family"]].label
        return FAMILIES[row["family"]].run_label(row)
    except ValueError as exc:
        raise AnalysisError(f"stored trials name an {exc}") from None


def load_trials(url: str | None = None, sweep: str | None = None, study: str = "table1") -> pd.DataFrame:
    """Every trial of ``study`` (all statuses) with its sweep's name, grid, profile and search, and a ``label``
    column; a Table 2 trial's config fields (kept as JSON) become columns too."""
    engine = connect_readonly(url)
    try:
        if not _has_tables(engine):
            return pd.DataFrame()
        has_study = "study" in {c["name"] for c in inspect(engine).get_columns("trials")}
        if not has_study and study != "table1":  # a database from before studies holds Table 1 trials only
            return pd.DataFrame()
        query = ("select t.*, s.name as sweep, s.grid as sweep_grid, s.profile as profile "
                 "from trials t join sweeps s on s.id = t.sweep_id where 1 = 1")
        params = {}
        if has_study:
            query += " and t.study = :study"
            params["study"] = study
        if sweep:
            query += " and s.name = :sweep"
            params["sweep"] = sweep
        with engine.connect() as connection:
            frame = pd.read_sql(text(query), connection, params=params)
    finally:
        engine.dispose()
    if frame.empty:
        return frame
    if study != "table1":
        fields = pd.DataFrame([json.loads(v) for v in frame["config"]], index=frame.index)
        frame = frame.drop(columns=[c for c in fields.columns if c in frame.columns]).join(fields)
    frame["study"] = study
    frame["label"] = frame.apply(family_label, axis=1)
    if study == "table1":  # the loss, as Lucic et al.'s study names it (analysis.lucic), and its runs' label
        frame["loss"] = frame.apply(lambda row: FAMILIES[row["family"]].loss_label(row), axis=1)
        lucic = is_lucic(frame["sweep_grid"])  # sampled margins would give every EBGAN run a label of its own
        frame.loc[lucic, "label"] = frame.loc[lucic, "loss"]
    if study == "table1":  # rows from before the convolutional networks have a null architecture: Table 1's
        frame["architecture"] = frame.get("architecture", pd.Series(index=frame.index, dtype=object)).fillna("mlp")
    frame["class_histogram"] = frame["class_histogram"].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    return frame


def load_sweeps(url: str | None = None) -> pd.DataFrame:
    """One row per sweep with its settings and provenance."""
    engine = connect_readonly(url)
    try:
        if not _has_tables(engine):
            return pd.DataFrame()
        with engine.connect() as connection:
            return pd.read_sql(text("select * from sweeps order by id"), connection)
    finally:
        engine.dispose()


def load_interim_scores(url: str | None = None) -> pd.DataFrame:
    """Scores of trials at steps before their last (table ``interim_scores``; empty in databases without it)."""
    engine = connect_readonly(url)
    try:
        if "interim_scores" not in set(inspect(engine).get_table_names()):
            return pd.DataFrame(columns=["trial_id", "step", "i_prime"])
        with engine.connect() as connection:
            return pd.read_sql(text("select * from interim_scores order by trial_id, step"), connection)
    finally:
        engine.dispose()


def load_sample_pngs(url: str | None, trial_ids: list[int]) -> dict[int, bytes]:
    """The stored fixed-z sample grid (PNG bytes) of each trial id that has one."""
    if not trial_ids:
        return {}
    engine = connect_readonly(url)
    try:
        with engine.connect() as connection:
            query = text("select trial_id, png from samples where trial_id in :ids").bindparams(
                bindparam("ids", expanding=True))
            rows = connection.execute(query, {"ids": [int(i) for i in trial_ids]}).all()
    finally:
        engine.dispose()
    return {int(trial_id): bytes(png) for trial_id, png in rows}
