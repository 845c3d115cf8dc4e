"""The convolutional networks' settings as config columns of ``trials``: the architecture, the image size and the
width (null in rows from before them: those runs had Table 1's fully connected networks on 32x32 images).

Revision ID: ebgan_0008
Revises: ebgan_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "ebgan_0008"
down_revision = "ebgan_0007"
branch_labels = None
depends_on = None

COLUMNS = (("architecture", sa.String(16)), ("image_size", sa.Integer), ("width", sa.Integer))


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
