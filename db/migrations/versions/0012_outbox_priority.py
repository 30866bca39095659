"""Outbox: a priority per row, and claims in (priority, not_before) order.

A member's reply queued during a 20,000-group push waited behind every marketing row already
due for the same account (minutes at 20 a minute). Rows now carry a priority set at enqueue
(0: replies, tickets, moderation, invitations, welcomes; 1: campaign pushes) and the claim
index leads with it after the account, so a claim finds the first due row of the most urgent
priority in O(log n), whatever the history. Pending pushes already queued become priority 1.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy on SQLite): the outbox may hold a million audit rows.
    op.add_column(
        "outbox", sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.execute(f"UPDATE outbox SET priority = 1 WHERE {PENDING} AND marketing = true")
    op.drop_index("ix_outbox_pending_claim", table_name="outbox")
    op.create_index(
        "ix_outbox_pending_claim",
        "outbox",
        ["account", "priority", "not_before", "id"],
        unique=False,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_claim", table_name="outbox")
    op.create_index(
        "ix_outbox_pending_claim",
        "outbox",
        ["account", "not_before", "id"],
        unique=False,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("priority")
