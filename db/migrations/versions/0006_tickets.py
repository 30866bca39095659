"""Tickets: members' questions handed to their customer manager, with SLA state.

``ticket.id`` is the ticket number shown to people (``#12``): SQLite AUTOINCREMENT never reuses
a number, PostgreSQL's serial is a sequence shared by every process. ``ticket.key`` is unique:
the same escalated message handled twice opens one ticket.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("member_id", sa.String(100), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("manager_id", sa.String(100), nullable=True),
        sa.Column("manager_contact", sa.String(100), nullable=True),
        sa.Column("escalated_to", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("waiting_since", TS, nullable=False),
        sa.Column("first_response_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("sla_stage", sa.Integer(), nullable=False),
        sa.Column("sla_due_at", TS, nullable=True),
        sa.Column("sla_missed_at", TS, nullable=True),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'pending', 'resolved')", name="ck_ticket_status"),
        sa.CheckConstraint("priority IN ('normal', 'high')", name="ck_ticket_priority"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_ticket_key"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_sla_due", ["sla_due_at"], unique=False)
        batch_op.create_index(
            "ix_ticket_manager_status", ["manager_contact", "status"], unique=False
        )
        batch_op.create_index("ix_ticket_group_created", ["group_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_group_created")
        batch_op.drop_index("ix_ticket_manager_status")
        batch_op.drop_index("ix_ticket_sla_due")
    op.drop_table("ticket")
