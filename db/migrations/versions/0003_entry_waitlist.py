"""Entry: the waitlist of people promised a message when a group with room opens near them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entry_waitlist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact", sa.String(100), nullable=False),
        sa.Column("area", sa.String(100), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_group", sa.String(100), nullable=True),
        sa.CheckConstraint("channel IN ('chat')", name="ck_entry_waitlist_channel"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact", "area", name="uq_entry_waitlist_contact_area"),
    )
    with op.batch_alter_table("entry_waitlist", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entry_waitlist_area_notified", ["area", "notified_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("entry_waitlist", schema=None) as batch_op:
        batch_op.drop_index("ix_entry_waitlist_area_notified")
    op.drop_table("entry_waitlist")
