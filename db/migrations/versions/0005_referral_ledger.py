"""Referral ledger: partner conversion events, rewards per tier, and their status history.

``referral_event.event_id`` is unique (a replayed event inserts nothing) and
``referral_reward (referrer_id, tier)`` is unique (a tier is granted once, whatever the code
does), so the database itself refuses a double reward.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "referral_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("referral_code", sa.String(40), nullable=False),
        sa.Column("referrer_id", sa.String(100), nullable=False),
        sa.Column("applicant", sa.String(200), nullable=False),
        sa.Column("referrer_applicant", sa.String(200), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("wins", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.CheckConstraint(
            "type IN ('application_submitted', 'application_approved', 'card_activated')",
            name="ck_referral_event_type",
        ),
        sa.CheckConstraint("source IN ('webhook', 'import')", name="ck_referral_event_source"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", name="uq_referral_event_event_id"),
    )
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_event_referrer", ["referrer_id", "wins", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_referral_event_applicant", ["applicant", "type"], unique=False)
        batch_op.create_index("ix_referral_event_outcome", ["outcome", "referrer_id"], unique=False)
    op.create_table(
        "referral_reward",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.String(100), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("reward", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held_reason", sa.String(), nullable=False),
        sa.Column("reached_at", TS, nullable=False),
        sa.Column("reached_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_note", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'held', 'sent', 'confirmed', 'rejected')",
            name="ck_referral_reward_status",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referrer_id", "tier", name="uq_referral_reward_referrer_tier"),
    )
    with op.batch_alter_table("referral_reward", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_reward_status", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_referral_reward_reached", ["reached_at"], unique=False)
    op.create_table(
        "referral_reward_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.String(100), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_reward_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_reward_history_reward", ["reward_id", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("referral_reward_history")
    op.drop_table("referral_reward")
    op.drop_table("referral_event")
