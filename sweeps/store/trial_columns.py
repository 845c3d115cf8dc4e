"""What the migrations that add config columns to ``trials`` share: adding them, and dropping them again."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


def add_trial_columns(columns: Sequence[tuple[str, type[sa.types.TypeEngine] | sa.types.TypeEngine]]) -> None:
    """Add nullable ``columns`` (name, type) to ``trials``: null in the rows from before them."""
    with op.batch_alter_table("trials") as batch:
        for name, kind in columns:
            batch.add_column(sa.Column(name, kind))


def drop_trial_columns(columns: Sequence[tuple[str, object]]) -> None:
    """Drop ``columns`` from ``trials`` again, the last first."""
    with op.batch_alter_table("trials") as batch:
        for name, _ in reversed(columns):
            batch.drop_column(name)
