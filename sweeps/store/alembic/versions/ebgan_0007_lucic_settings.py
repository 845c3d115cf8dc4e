"""The settings of Lucic et al.'s losses and shapes of the work, as config columns of ``trials``: the gradient
penalty's weight, WGAN's clipping bound, BEGAN's gamma and lambda_k, discriminator updates per generator update and
batch norm in the discriminator (null in rows from before them: those runs had one update and batch norm).

Revision ID: ebgan_0007
Revises: ebgan_0006
"""

import sqlalchemy as sa

from sweeps.store.trial_columns import add_trial_columns, drop_trial_columns

revision = "ebgan_0007"
down_revision = "ebgan_0006"
branch_labels = None
depends_on = None

COLUMNS = (("penalty_weight", sa.Float), ("clip", sa.Float), ("began_gamma", sa.Float),
           ("began_lambda_k", sa.Float), ("disc_iters", sa.Integer), ("batch_norm_d", sa.Boolean))


def upgrade() -> None:
    add_trial_columns(COLUMNS)


def downgrade() -> None:
    drop_trial_columns(COLUMNS)
