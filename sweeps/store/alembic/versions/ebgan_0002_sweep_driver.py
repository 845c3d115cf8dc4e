"""Sweeps record which driver runs them and when it last said so (two drivers never run one sweep at once).

Revision ID: ebgan_0002
Revises: ebgan_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0002"
down_revision = "ebgan_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sweeps", sa.Column("driver", sa.String(200)))
    op.add_column("sweeps", sa.Column("driver_seen_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("sweeps", "driver_seen_at")
    op.drop_column("sweeps", "driver")
