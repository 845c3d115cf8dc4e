"""What exploring a study needs: each sweep's number of configs in all (``N of M`` while it runs), and the sample
grid of a trial at every interim scoring step (the step slider of ``ebgan explore``).

Revision ID: ebgan_0006
Revises: ebgan_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0006"
down_revision = "ebgan_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("total_configs", sa.Integer))
    op.create_table(
        "interim_samples",
        sa.Column("trial_id", sa.Integer, sa.ForeignKey("trials.id"), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("png", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("interim_samples")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("total_configs")
