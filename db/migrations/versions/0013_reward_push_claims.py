"""Referral rewards: a push claim (holder and expiry) per reward.

Two ``qunfu run`` processes on PostgreSQL could both read a pending reward and POST it to the
partner (only the idempotency key guarded). A push now first claims the reward in a committed
transaction (``claimed_by``, ``claimed_until``), and only an unclaimed or lapsed reward is due.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN of nullable columns: no table copy on SQLite, no rewrite on PostgreSQL.
    op.add_column("referral_reward", sa.Column("claimed_by", sa.String(length=100), nullable=True))
    op.add_column(
        "referral_reward", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("referral_reward", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
