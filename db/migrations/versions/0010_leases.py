"""Several processes on PostgreSQL: leases on accounts and on occurrence fan-outs.

``worker_lease`` has one row per running ``qunfu run`` process (its heartbeat: how many share
the accounts); ``account_lease`` one row per account, held by one process until ``expires_at``
and renewed by its heartbeat (bot/leases.py). ``schedule_occurrence`` gains the fan-out's
``holder``, ``claimed_until`` and ``fanned_out_at``: an occurrence is recorded (unique) before
its fan-out starts, and one not finished whose claim lapsed is resumed by another process.
Occurrences already enqueued count as fanned out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
UNFINISHED = "status = 'enqueued' AND fanned_out_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "worker_lease",
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )
    op.create_table(
        "account_lease",
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    with op.batch_alter_table("schedule_occurrence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", TS, nullable=True))
        batch_op.add_column(sa.Column("fanned_out_at", TS, nullable=True))
    op.execute(
        "UPDATE schedule_occurrence SET fanned_out_at = recorded_at WHERE status = 'enqueued'"
    )
    op.create_index(
        "ix_occurrence_unfinished",
        "schedule_occurrence",
        ["claimed_until"],
        sqlite_where=sa.text(UNFINISHED),
        postgresql_where=sa.text(UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_occurrence_unfinished", table_name="schedule_occurrence")
    with op.batch_alter_table("schedule_occurrence", schema=None) as batch_op:
        batch_op.drop_column("fanned_out_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("holder")
    op.drop_table("account_lease")
    op.drop_table("worker_lease")
