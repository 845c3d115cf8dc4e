"""The results database's tables (SQLAlchemy Core); query them with plain ``sqlite3`` too (docs/database.md).

- ``sweeps``: one row per sweep name: grid, profile, search method, code and library versions, device, settings, its
  number of configs in all, and the driver running it now (host:pid, last heartbeat).
- ``trials``: one row per (sweep, config hash, seed): its study (``table1``, ``table2``), its whole config as
  JSON and every Table 1 config field as a column (null where the study has no such field), the status
  (completed / diverged / failed), the scores (Table 1: I' and the others with their sample count; Table 2:
  the test error), steps, seconds, error text, provenance and timestamps.
- ``samples``: the fixed-z sample grid of a trial as PNG bytes.
- ``curves``: short training curves of a trial (JSON).
- ``interim_scores``: the scores of a trial at steps before its last (the profile's ``score_every``).
- ``interim_samples``: the fixed-z sample grid of a trial at those steps, as PNG bytes.
Trials from before studies existed (schema revision ebgan_0005) are Table 1's, with a null ``config``. A change
here needs a migration in ``sweeps/store/alembic/versions`` (``tests/test_store.py`` compares the two).
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ebgan_core.table1.config import TrialConfig

STATUSES = ("completed", "diverged", "failed")
FINISHED = ("completed", "diverged")  # need no rerun; failed trials are retried
SCORE_COLUMNS = ("i_prime", "inception_score", "frechet_distance", "kl_to_uniform", "test_error")
SHARED_CONFIG_COLUMNS = ("family", "seed")  # every study's configs have these; Table 1's other fields may be null

metadata = MetaData()

_FIELD_TYPES = {int: Integer, float: Float, bool: Boolean, str: String(16)}
_LONG_TEXT_FIELDS = {"dataset": String(80)}  # folder-<64 hex digits>


def _config_columns() -> list[Column]:
    columns = []
    for spec in dataclasses.fields(TrialConfig):
        kind = _LONG_TEXT_FIELDS.get(spec.name, _FIELD_TYPES[type(getattr(TrialConfig(), spec.name))])
        columns.append(Column(spec.name, kind, nullable=spec.name not in SHARED_CONFIG_COLUMNS))
    return columns


CONFIG_COLUMNS = tuple(f.name for f in dataclasses.fields(TrialConfig))

sweeps_table = Table(
    "sweeps", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("grid", String(64), nullable=False),
    Column("profile", String(32), nullable=False),
    Column("search", String(32), nullable=False, default="grid"),
    Column("code_version", String(64), nullable=False),
    Column("library_versions", Text, nullable=False),  # JSON
    Column("device", String(200), nullable=False),
    Column("settings", Text, nullable=False),  # JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("driver", String(200)),  # host:pid of the driver running the sweep now, if any
    Column("driver_seen_at", DateTime(timezone=True)),  # its last heartbeat
    Column("total_configs", Integer),  # configs in the whole sweep (grid x seeds, or an adaptive search's trials)
)

trials_table = Table(
    "trials", metadata,
    Column("id", Integer, primary_key=True),
    Column("sweep_id", Integer, ForeignKey("sweeps.id"), nullable=False, index=True),
    Column("config_hash", String(64), nullable=False),
    Column("study", String(32), nullable=False, server_default="table1"),
    Column("config", Text),  # JSON: every field of the config; null in rows from before studies (Table 1's)
    *[c for c in _config_columns() if c.name != "seed"],
    Column("seed", Integer, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("i_prime", Float),
    Column("inception_score", Float),
    Column("frechet_distance", Float),
    Column("kl_to_uniform", Float),
    Column("test_error", Float),  # Table 2: percent of the 10,000 test images misclassified
    Column("classes_present", Integer),
    Column("class_histogram", Text),  # JSON list of 10 counts
    Column("n_samples", Integer),
    Column("steps_done", Integer),
    Column("diverged_at_step", Integer),
    Column("resumed_from_step", Integer),  # its group resumed from a checkpoint at this step; null: uninterrupted
    Column("seconds", Float),
    Column("group_seconds", Float),
    Column("group_size", Integer),
    Column("error", Text),
    Column("search", String(32), nullable=False, default="grid"),
    Column("device", String(200)),
    Column("judge_sha256", String(64)),
    Column("code_version", String(64), nullable=False),
    Column("library_versions", Text, nullable=False),  # JSON
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("sweep_id", "config_hash", "seed", name="uq_trial"),
)

samples_table = Table(
    "samples", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("png", LargeBinary, nullable=False),
)

curves_table = Table(
    "curves", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("curves", Text, nullable=False),  # JSON {name: [bin means]}
)


interim_scores_table = Table(
    "interim_scores", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("step", Integer, primary_key=True),
    *(Column(name, Float) for name in SCORE_COLUMNS),
    Column("classes_present", Integer),
    Column("n_samples", Integer),
)


interim_samples_table = Table(
    "interim_samples", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("png", LargeBinary, nullable=False),
)
