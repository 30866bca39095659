"""Marketing opt-out: ``退订`` stops marketing @mentions, private marketing pushes and lottery
entries for a member; ``订阅`` resumes them. Every change is recorded with its time.

Senders that single members out (the welcome's @mentions, lottery entries and draws, private
pushes) ask :meth:`MarketingOptOut.among` once per batch or occurrence, never once per member.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine

from db.engagement_repositories import OptOutRecord, OptOutRepo

__all__ = ["OPT_IN", "OPT_OUT", "MarketingOptOut", "OptOutRecord"]

OPT_OUT = "退订"
OPT_IN = "订阅"


class MarketingOptOut:
    """Who opted out of marketing, and the record of every 退订 / 订阅."""

    def __init__(self, engine: Engine) -> None:
        self._repo = OptOutRepo(engine)

    def choose(
        self, person_id: str, opted_out: bool, at: datetime, group_id: str | None = None
    ) -> bool:
        """Record the member's choice (sent in ``group_id``, or privately); True when it
        changed their state, False when they had already chosen so (recorded all the same)."""
        via = "group" if group_id else "private"
        return self._repo.choose(person_id, opted_out, at, via, group_id)

    def is_opted_out(self, person_id: str) -> bool:
        """Whether the member opted out."""
        return self._repo.is_opted_out(person_id)

    def among(self, person_ids: Iterable[str]) -> set[str]:
        """The opted-out members among ``person_ids`` (one query)."""
        return self._repo.among(person_ids)

    def history(self, since: datetime | None = None) -> list[OptOutRecord]:
        """Every 退订 / 订阅, oldest first."""
        return self._repo.history(since)
