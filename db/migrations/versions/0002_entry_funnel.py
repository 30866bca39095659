"""Entry path: live-code visits (the funnel), cached group QR codes, issued referral codes.

See docs/entry.md.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:18:47.627706
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entry_visit",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("ref_code", sa.String(40), nullable=True),
        sa.Column("referrer_id", sa.String(100), nullable=True),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("located_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("located_how", sa.String(16), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("area", sa.String(100), nullable=True),
        sa.Column("overflow", sa.Boolean(), nullable=False),
        sa.Column("chosen_group", sa.String(100), nullable=True),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("join_method", sa.String(8), nullable=True),
        sa.Column("invite_code", sa.String(8), nullable=True),
        sa.Column("invited_contact", sa.String(100), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("person_id", sa.String(100), nullable=True),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "join_method IN ('qr', 'invite') OR join_method IS NULL",
            name="ck_entry_visit_join_method",
        ),
        sa.CheckConstraint(
            "located_how IN ('gps', 'address', 'district') OR located_how IS NULL",
            name="ck_entry_visit_located_how",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invite_code", name="uq_entry_visit_invite_code"),
    )
    with op.batch_alter_table("entry_visit", schema=None) as batch_op:
        batch_op.create_index("ix_entry_visit_chosen", ["chosen_group", "chosen_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_entry_visit_invited_contact"), ["invited_contact"], unique=False
        )
        batch_op.create_index("ix_entry_visit_visited", ["visited_at"], unique=False)

    op.create_table(
        "group_qrcode",
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "referral_code",
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("person_id", sa.String(100), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    with op.batch_alter_table("referral_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_code_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_code_person_id"))

    op.drop_table("referral_code")
    op.drop_table("group_qrcode")
    with op.batch_alter_table("entry_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_entry_visit_visited")
        batch_op.drop_index(batch_op.f("ix_entry_visit_invited_contact"))
        batch_op.drop_index("ix_entry_visit_chosen")

    op.drop_table("entry_visit")
