"""Trials keep their scores at steps before their last (a profile's ``score_every``): I' against the budget.

Revision ID: ebgan_0004
Revises: ebgan_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0004"
down_revision = "ebgan_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interim_scores",
        sa.Column("trial_id", sa.Integer, sa.ForeignKey("trials.id"), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.Float) for name in ("i_prime", "inception_score", "frechet_distance", "kl_to_uniform")),
        sa.Column("classes_present", sa.Integer),
        sa.Column("n_samples", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("interim_scores")
