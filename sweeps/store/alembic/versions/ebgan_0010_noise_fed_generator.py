"""The convolutional generator as a config column of ``trials``: dcgan (Appendix C's) or noise-fed (Section 4.4's;
null in rows from before it: Appendix C's).

Revision ID: ebgan_0010
Revises: ebgan_0009
"""

import sqlalchemy as sa

from sweeps.store.trial_columns import add_trial_columns, drop_trial_columns

revision = "ebgan_0010"
down_revision = "ebgan_0009"
branch_labels = None
depends_on = None

COLUMNS = (("generator", sa.String(16)),)


def upgrade() -> None:
    add_trial_columns(COLUMNS)


def downgrade() -> None:
    drop_trial_columns(COLUMNS)
