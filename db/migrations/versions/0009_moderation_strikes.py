"""Moderation strikes and the reason of every send.

``moderation_strike`` keeps one row per strike (group, member, rule, time; never the message);
the unique (group, member, time) both counts a member's strikes in a window and makes the same
message handled twice one strike. ``outbox.reason`` says why the bot sent a row (campaign,
ticket, moderation rule, command...) for ``qunfu audit``. Existing group messages get their
``group_id`` from the conversation, so ``qunfu audit --group`` finds them through
``ix_outbox_group_id``; rows without a reason are given one when read (bot/audit.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "moderation_strike",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("member_id", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "member_id", "at", name="uq_strike_message"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(200), nullable=True))
    # 'room:' is 5 characters; substr is 1-based on SQLite and PostgreSQL alike.
    op.execute(
        "UPDATE outbox SET group_id = substr(conversation, 6) "
        "WHERE group_id IS NULL AND conversation LIKE 'room:%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("reason")
    op.drop_table("moderation_strike")
