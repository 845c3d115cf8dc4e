"""Image folders as data: each trial's dataset (mnist, or folder-<sha256 of the folder's listing>) and channels (1
grey, 3 RGB) as config columns of ``trials`` (null in rows from before them: MNIST, grey).

Revision ID: ebgan_0009
Revises: ebgan_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0009"
down_revision = "ebgan_0008"
branch_labels = None
depends_on = None

COLUMNS = (("channels", sa.Integer), ("dataset", sa.String(80)))


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
