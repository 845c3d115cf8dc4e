"""Image folders as data: each trial's dataset (mnist, or folder-<sha256 of the folder's listing>) and channels (1
grey, 3 RGB) as config columns of ``trials`` (null in rows from before them: MNIST, grey).

Revision ID: ebgan_0009
Revises: ebgan_0008
"""

import sqlalchemy as sa

from sweeps.store.trial_columns import add_trial_columns, drop_trial_columns

revision = "ebgan_0009"
down_revision = "ebgan_0008"
branch_labels = None
depends_on = None

COLUMNS = (("channels", sa.Integer), ("dataset", sa.String(80)))


def upgrade() -> None:
    add_trial_columns(COLUMNS)


def downgrade() -> None:
    drop_trial_columns(COLUMNS)
