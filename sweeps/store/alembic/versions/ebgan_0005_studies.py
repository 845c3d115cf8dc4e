"""Trials of any study: each names its study and keeps its whole config as JSON; Table 2's test error is a score.

Table 1's config columns become nullable (a Table 2 trial fills only the fields it shares with Table 1: family,
lr, steps, margin, ...). Rows from before this revision are Table 1 trials: ``study`` defaults to ``table1`` and
their ``config`` is left null (their columns hold it).

Revision ID: ebgan_0005
Revises: ebgan_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0005"
down_revision = "ebgan_0004"
branch_labels = None
depends_on = None

# Table 1's config columns as of ebgan_0004, except family and seed (every study has them).
TABLE1_ONLY = (
    ("n_layer_g", sa.Integer), ("n_layer_d", sa.Integer), ("size_g", sa.Integer), ("size_d", sa.Integer),
    ("dropout_d", sa.Boolean), ("optim_d", sa.String(16)), ("optim_g", sa.String(16)), ("lr", sa.Float),
    ("margin", sa.Float), ("margin_decay_steps", sa.Integer), ("pt_weight", sa.Float), ("batch_size", sa.Integer),
    ("noise_dim", sa.Integer), ("steps", sa.Integer), ("dropout_rate", sa.Float), ("adam_beta1", sa.Float),
    ("adam_beta2", sa.Float), ("sgd_momentum", sa.Float), ("data_seed", sa.Integer), ("score_samples", sa.Integer),
    ("precision", sa.String(16)),
)


def upgrade() -> None:
    op.add_column("trials", sa.Column("study", sa.String(32), nullable=False, server_default="table1"))
    op.add_column("trials", sa.Column("config", sa.Text))
    op.add_column("trials", sa.Column("test_error", sa.Float))
    with op.batch_alter_table("trials") as batch:  # SQLite alters a column's nullability by copying the table
        for name, kind in TABLE1_ONLY:
            batch.alter_column(name, existing_type=kind, nullable=True)
    op.add_column("interim_scores", sa.Column("test_error", sa.Float))


def downgrade() -> None:
    op.drop_column("interim_scores", "test_error")
    other = "(select id from trials where study != 'table1')"
    for table in ("samples", "curves", "interim_scores"):
        op.execute(f"delete from {table} where trial_id in {other}")
    op.execute("delete from trials where study != 'table1'")
    with op.batch_alter_table("trials") as batch:
        for name, kind in TABLE1_ONLY:
            batch.alter_column(name, existing_type=kind, nullable=False)
    for name in ("test_error", "config", "study"):
        op.drop_column("trials", name)
