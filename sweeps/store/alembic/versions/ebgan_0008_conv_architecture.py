"""The convolutional networks' settings as config columns of ``trials``: the architecture, the image size and the
width (null in rows from before them: those runs had Table 1's fully connected networks on 32x32 images).

Revision ID: ebgan_0008
Revises: ebgan_0007
"""

import sqlalchemy as sa

from sweeps.store.trial_columns import add_trial_columns, drop_trial_columns

revision = "ebgan_0008"
down_revision = "ebgan_0007"
branch_labels = None
depends_on = None

COLUMNS = (("architecture", sa.String(16)), ("image_size", sa.Integer), ("width", sa.Integer))


def upgrade() -> None:
    add_trial_columns(COLUMNS)


def downgrade() -> None:
    drop_trial_columns(COLUMNS)
