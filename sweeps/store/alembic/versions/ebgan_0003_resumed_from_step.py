"""Trials record the step their group resumed at from a mid-training checkpoint (null: trained uninterrupted).

Revision ID: ebgan_0003
Revises: ebgan_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0003"
down_revision = "ebgan_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trials", sa.Column("resumed_from_step", sa.Integer))


def downgrade() -> None:
    op.drop_column("trials", "resumed_from_step")
