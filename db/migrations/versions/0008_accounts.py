"""Bot accounts: each group's account, each account's health and daily sends.

``group_account`` keeps the account serving each group (balanced when assigned, then sticky);
``account_health`` the last up/down a running bot saw for each account; ``outbox_pacing`` gains
the account's calls on the current Asia/Shanghai day, for its daily cap. Existing accounts start
the day at zero calls.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "group_account",
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_index("ix_group_account_account", "group_account", ["account"])
    op.create_table(
        "account_health",
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    with op.batch_alter_table("outbox_pacing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("day", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("day_calls", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_pacing", schema=None) as batch_op:
        batch_op.drop_column("day_calls")
        batch_op.drop_column("day")
    op.drop_table("account_health")
    op.drop_index("ix_group_account_account", table_name="group_account")
    op.drop_table("group_account")
