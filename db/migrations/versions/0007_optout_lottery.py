"""Marketing opt-out history and lotteries with a committed seed.

``optout_event`` records every 退订 / 订阅 with its time (the current state stays
``person.opted_out``). ``lottery_round (campaign_id, occurrence)`` is unique, so an occurrence
gets one committed seed even with several processes; ``lottery_entry (round_id, person_id)`` is
unique, so a member enters a round once; ``lottery_winner`` holds the stored results.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "optout_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(100), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=True),
        sa.CheckConstraint("via IN ('group', 'private')", name="ck_optout_event_via"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("optout_event", schema=None) as batch_op:
        batch_op.create_index("ix_optout_event_at", ["at"], unique=False)
        batch_op.create_index("ix_optout_event_person", ["person_id", "id"], unique=False)
    op.create_table(
        "lottery_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(100), nullable=False),
        sa.Column("occurrence", TS, nullable=False),
        sa.Column("keyword", sa.String(40), nullable=False),
        sa.Column("committed", sa.String(64), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("draw_at", TS, nullable=False),
        sa.Column("winners_per_group", sa.Integer(), nullable=False),
        sa.Column("prizes", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("drawn_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "occurrence", name="uq_lottery_round_occurrence"),
    )
    with op.batch_alter_table("lottery_round", schema=None) as batch_op:
        batch_op.create_index("ix_lottery_round_due", ["drawn_at", "draw_at"], unique=False)
    op.create_table(
        "lottery_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("person_id", sa.String(100), nullable=False),
        sa.Column("person_name", sa.String(), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("excluded", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(["round_id"], ["lottery_round.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "person_id", name="uq_lottery_entry_person"),
    )
    with op.batch_alter_table("lottery_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lottery_entry_round_group", ["round_id", "group_id"], unique=False
        )
    op.create_table(
        "lottery_winner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("person_id", sa.String(100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("prize", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["lottery_round.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "group_id", "rank", name="uq_lottery_winner_rank"),
        sa.UniqueConstraint("round_id", "person_id", name="uq_lottery_winner_person"),
    )


def downgrade() -> None:
    op.drop_table("lottery_winner")
    with op.batch_alter_table("lottery_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_lottery_entry_round_group")
    op.drop_table("lottery_entry")
    with op.batch_alter_table("lottery_round", schema=None) as batch_op:
        batch_op.drop_index("ix_lottery_round_due")
    op.drop_table("lottery_round")
    with op.batch_alter_table("optout_event", schema=None) as batch_op:
        batch_op.drop_index("ix_optout_event_person")
        batch_op.drop_index("ix_optout_event_at")
    op.drop_table("optout_event")
