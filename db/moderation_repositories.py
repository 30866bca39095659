"""Moderation strikes in the database: :class:`StrikeRepo` implements
:class:`bot.moderation.StrikeRepository` over the ``moderation_strike`` table.

Each call is its own short transaction (or joins the session it is given). Counting reads the
unique index (group, member, time), so a member's strikes cost O(their strikes) whatever the
table's size.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from db.models import ModerationStrikeRow
from db.repositories import _Repo
from scheduler.clock import aware

__all__ = ["StrikeRepo"]


class StrikeRepo(_Repo):
    """Strikes by group and member; the same message (same member, group and time) counts once."""

    def add(self, group_id: str, member_id: str, rule: str, at: datetime) -> None:
        """Record one strike; adding the same one again (an event handled twice) does nothing."""
        table = ModerationStrikeRow.__table__  # type: ignore[attr-defined]
        with self._session() as s:
            postgres = s.get_bind().dialect.name == "postgresql"
            insert = postgresql.insert if postgres else sqlite.insert
            s.execute(
                insert(table)
                .values(group_id=group_id, member_id=member_id, rule=rule, at=aware(at))
                .on_conflict_do_nothing(index_elements=["group_id", "member_id", "at"])
            )

    def count(self, group_id: str, member_id: str, since: datetime | None) -> int:
        """Strikes of the member in the group at or after ``since`` (all when None)."""
        stmt = sa.select(sa.func.count()).where(
            col(ModerationStrikeRow.group_id) == group_id,
            col(ModerationStrikeRow.member_id) == member_id,
        )
        if since is not None:
            stmt = stmt.where(col(ModerationStrikeRow.at) >= aware(since))
        with self._session() as s:
            return int(s.execute(stmt).scalar_one())

    def clear(self, group_id: str, member_id: str) -> None:
        """Forget the member's strikes in the group (after removal: a member let back in starts
        afresh)."""
        with self._session() as s:
            s.execute(
                sa.delete(ModerationStrikeRow).where(
                    col(ModerationStrikeRow.group_id) == group_id,
                    col(ModerationStrikeRow.member_id) == member_id,
                )
            )
