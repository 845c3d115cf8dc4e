"""Baseline: the schema of every database written before migrations existed, frozen here.

A fresh database gets every table. A database from before migrations (tables ``sweeps``, ``trials``, ``samples``,
``curves`` without ``ebgan_schema_version``) keeps its rows and gains the tables and the config columns it lacks,
each config column with the default that older code implied.

Revision ID: ebgan_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0001"
down_revision = None
branch_labels = None
depends_on = None

# TrialConfig's fields as of this revision: (name, type, default). A later field needs a migration of its own.
CONFIG_FIELDS = (
    ("family", sa.String(16), "ebgan"), ("n_layer_g", sa.Integer, 5), ("n_layer_d", sa.Integer, 2),
    ("size_g", sa.Integer, 800), ("size_d", sa.Integer, 1024), ("dropout_d", sa.Boolean, False),
    ("optim_d", sa.String(16), "adam"), ("optim_g", sa.String(16), "adam"), ("lr", sa.Float, 0.001),
    ("margin", sa.Float, 10.0), ("margin_decay_steps", sa.Integer, 0), ("pt_weight", sa.Float, 0.0),
    ("batch_size", sa.Integer, 64), ("noise_dim", sa.Integer, 100), ("steps", sa.Integer, 3000),
    ("dropout_rate", sa.Float, 0.5), ("adam_beta1", sa.Float, 0.5), ("adam_beta2", sa.Float, 0.999),
    ("sgd_momentum", sa.Float, 0.0), ("data_seed", sa.Integer, 0), ("score_samples", sa.Integer, 1000),
    ("precision", sa.String(16), "fp32"),
)


def _server_default(value: object) -> sa.TextClause:
    return sa.text(str(int(value)) if isinstance(value, bool) else repr(value))


def _tables() -> dict[str, list[sa.Column]]:
    config_columns = [sa.Column(name, kind, nullable=False) for name, kind, _ in CONFIG_FIELDS]
    return {
        "sweeps": [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(200), nullable=False, unique=True),
            sa.Column("grid", sa.String(64), nullable=False),
            sa.Column("profile", sa.String(32), nullable=False),
            sa.Column("search", sa.String(32), nullable=False),
            sa.Column("code_version", sa.String(64), nullable=False),
            sa.Column("library_versions", sa.Text, nullable=False),
            sa.Column("device", sa.String(200), nullable=False),
            sa.Column("settings", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        ],
        "trials": [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=False, index=True),
            sa.Column("config_hash", sa.String(64), nullable=False),
            *config_columns,
            sa.Column("seed", sa.Integer, nullable=False),
            sa.Column("status", sa.String(16), nullable=False, index=True),
            *[sa.Column(name, sa.Float) for name in ("i_prime", "inception_score", "frechet_distance",
                                                      "kl_to_uniform")],
            sa.Column("classes_present", sa.Integer),
            sa.Column("class_histogram", sa.Text),
            sa.Column("n_samples", sa.Integer),
            sa.Column("steps_done", sa.Integer),
            sa.Column("diverged_at_step", sa.Integer),
            sa.Column("seconds", sa.Float),
            sa.Column("group_seconds", sa.Float),
            sa.Column("group_size", sa.Integer),
            sa.Column("error", sa.Text),
            sa.Column("search", sa.String(32), nullable=False),
            sa.Column("device", sa.String(200)),
            sa.Column("judge_sha256", sa.String(64)),
            sa.Column("code_version", sa.String(64), nullable=False),
            sa.Column("library_versions", sa.Text, nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True)),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("sweep_id", "config_hash", "seed", name="uq_trial"),
        ],
        "samples": [
            sa.Column("trial_id", sa.Integer, sa.ForeignKey("trials.id"), primary_key=True),
            sa.Column("png", sa.LargeBinary, nullable=False),
        ],
        "curves": [
            sa.Column("trial_id", sa.Integer, sa.ForeignKey("trials.id"), primary_key=True),
            sa.Column("curves", sa.Text, nullable=False),
        ],
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables().items():
        if name not in existing:
            op.create_table(name, *columns)
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("trials")}
    for name, kind, default in CONFIG_FIELDS:
        if name not in present:
            op.add_column("trials", sa.Column(name, kind, nullable=False, server_default=_server_default(default)))


def downgrade() -> None:
    raise NotImplementedError("the baseline cannot be downgraded; restore the file from a backup instead")
