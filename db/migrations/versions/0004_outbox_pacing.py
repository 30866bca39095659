"""Outbox: indexed claims and a pacing row per bot account.

Pacing used to be derived from ``max(last_attempt_at)`` over the whole outbox, a scan of the
audit log on every ``next_due``. It now lives in ``outbox_pacing`` (one row per account), and
pending rows get partial indexes, so claims and ``next_due`` cost the same at any history size.
Existing accounts get a pacing row seeded from their last gateway call.

No index leads with the status over the whole table any more: ``ix_outbox_status_next_attempt``
(from 0001) gives way to partial indexes on rows for ops (``ix_outbox_attention``) and on the
audit log (``ix_outbox_sent_at``). On PostgreSQL, statistics taken while nothing was pending made
any index holding pending rows look like a one-row lookup, and claims walked every pending row
through it: pending rows are now only in the pending indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"
ATTENTION = "status IN ('sending', 'failed', 'uncertain')"
SENT = "status = 'sent'"


def upgrade() -> None:
    op.create_table(
        "outbox_pacing",
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_call_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending_claim",
            ["account", "not_before", "id"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.create_index(
            "ix_outbox_pending_due",
            ["account", "marketing", "next_attempt_at", "status"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.create_index(
            "ix_outbox_attention",
            ["status", "not_before", "id"],
            unique=False,
            sqlite_where=sa.text(ATTENTION),
            postgresql_where=sa.text(ATTENTION),
        )
        batch_op.create_index(
            "ix_outbox_sent_at",
            ["status", "sent_at", "id"],
            unique=False,
            sqlite_where=sa.text(SENT),
            postgresql_where=sa.text(SENT),
        )
        batch_op.drop_index("ix_outbox_status_next_attempt")
    # The next slot of an account starts at its last call (conservative: as if no jitter was
    # drawn); accounts that never called start free.
    op.execute(
        "INSERT INTO outbox_pacing (account, slot_at, due_at, last_call_at, calls) "
        "SELECT account, max(last_attempt_at), max(last_attempt_at), max(last_attempt_at), 0 "
        "FROM outbox GROUP BY account"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_status_next_attempt", ["status", "next_attempt_at"], unique=False
        )
        batch_op.drop_index("ix_outbox_sent_at")
        batch_op.drop_index("ix_outbox_attention")
        batch_op.drop_index("ix_outbox_pending_due")
        batch_op.drop_index("ix_outbox_pending_claim")
    op.drop_table("outbox_pacing")
