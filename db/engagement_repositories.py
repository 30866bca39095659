"""Storage for member engagement: marketing opt-out and lottery rounds, entries and winners.

Each method is one short transaction (or runs in the session given), safe to run again after a
transient fault: the unique constraints (one round per occurrence, one entry per member and
round, one winner per rank) make a repeat add nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from db.models import (
    LotteryEntry,
    LotteryRound,
    LotteryWinner,
    Membership,
    OptOutEvent,
    PersonRow,
    ScheduleOccurrence,
)
from db.repositories import _Repo, insert_ignore, utc

EntryOutcome = Literal["entered", "already", "opted_out"]
_IN_CHUNK = 900  # ids per IN list: below SQLite's default 999 bound parameters


@dataclass(frozen=True)
class OptOutRecord:
    """One 退订 (``opted_out``) or 订阅 a member sent, with when and where."""

    person_id: str
    opted_out: bool
    at: datetime
    via: str
    group_id: str | None


@dataclass(frozen=True)
class Round:
    """A lottery round as stored."""

    id: int
    campaign_id: str
    occurrence: datetime
    keyword: str
    committed: str
    seed: str
    draw_at: datetime
    winners_per_group: int
    prizes: tuple[str, ...]
    drawn_at: datetime | None


@dataclass(frozen=True)
class Entrant:
    """An entry with what the draw needs to know about its member right now."""

    entry_id: int
    group_id: str
    person_id: str
    person_name: str
    excluded: str | None
    opted_out: bool
    in_group: bool


@dataclass(frozen=True)
class Winner:
    """A stored winner."""

    group_id: str
    person_id: str
    rank: int
    prize: str


class OptOutRepo(_Repo):
    """Marketing opt-out: the state on ``person.opted_out``, every change in ``optout_event``."""

    def choose(
        self, person_id: str, opted_out: bool, at: datetime, via: str, group_id: str | None
    ) -> bool:
        """Record a 退订 / 订阅; True when it changed the member's state."""
        at = utc(at)
        with self._session() as s:
            row = s.get(PersonRow, person_id, with_for_update=True)
            before = bool(row.opted_out) if row is not None else False
            if row is None:
                s.add(PersonRow(id=person_id, first_seen=at, opted_out=opted_out))
            else:
                row.opted_out = opted_out
            s.add(
                OptOutEvent(
                    person_id=person_id, opted_out=opted_out, at=at, via=via, group_id=group_id
                )
            )
            s.flush()
            return before != opted_out

    def is_opted_out(self, person_id: str) -> bool:
        """Whether the member opted out of marketing."""
        with self._session() as s:
            return bool(
                s.exec(select(PersonRow.opted_out).where(PersonRow.id == person_id)).first()
            )

    def among(self, person_ids: Iterable[str]) -> set[str]:
        """Which of ``person_ids`` opted out: one query (per 900 ids), by primary key."""
        ids = sorted(set(person_ids))
        found: set[str] = set()
        with self._session() as s:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                stmt = select(PersonRow.id).where(
                    col(PersonRow.id).in_(chunk), col(PersonRow.opted_out)
                )
                found.update(s.exec(stmt))
        return found

    def history(self, since: datetime | None = None) -> list[OptOutRecord]:
        """Every 退订 / 订阅, oldest first (from ``since`` when given)."""
        stmt = select(OptOutEvent).order_by(col(OptOutEvent.at), col(OptOutEvent.id))
        if since is not None:
            stmt = stmt.where(col(OptOutEvent.at) >= utc(since))
        with self._session() as s:
            return [
                OptOutRecord(r.person_id, r.opted_out, r.at, r.via, r.group_id)
                for r in s.exec(stmt)
            ]


class MemberDirectory(_Repo):
    """Names and current groups of members, for messages that mention them (masked)."""

    def names(self, person_ids: Iterable[str]) -> dict[str, str]:
        """Id -> nickname for the ids the bot has seen (one query per 900 ids)."""
        ids = sorted(set(person_ids))
        found: dict[str, str] = {}
        with self._session() as s:
            for start in range(0, len(ids), _IN_CHUNK):
                stmt = select(PersonRow.id, PersonRow.name).where(
                    col(PersonRow.id).in_(ids[start : start + _IN_CHUNK])
                )
                found.update({i: n for i, n in s.exec(stmt)})
        return found

    def latest_group(self, person_id: str) -> str | None:
        """The group the member joined last and is still in, if any."""
        stmt = (
            select(Membership.group_id)
            .where(Membership.person_id == person_id, col(Membership.left_at).is_(None))
            .order_by(col(Membership.joined_at).desc(), col(Membership.id).desc())
        )
        with self._session() as s:
            return s.exec(stmt).first()


class LotteryRepo(_Repo):
    """Lottery rounds, entries and results."""

    def announced_without_round(
        self, campaign_ids: Sequence[str], since: datetime
    ) -> list[tuple[str, datetime]]:
        """Lottery occurrences queued since ``since`` that have no round yet."""
        if not campaign_ids:
            return []
        has_round = (
            sa.select(sa.literal(1))
            .where(
                col(LotteryRound.campaign_id) == col(ScheduleOccurrence.campaign_id),
                col(LotteryRound.occurrence) == col(ScheduleOccurrence.fire_at),
            )
            .exists()
        )
        stmt = (
            select(ScheduleOccurrence.campaign_id, ScheduleOccurrence.fire_at)
            .where(
                col(ScheduleOccurrence.campaign_id).in_(list(campaign_ids)),
                col(ScheduleOccurrence.status) == "enqueued",
                col(ScheduleOccurrence.fire_at) >= utc(since),
                ~has_round,
            )
            .order_by(col(ScheduleOccurrence.fire_at))
        )
        with self._session() as s:
            return [(cid, at) for cid, at in s.exec(stmt)]

    def open_round(self, values: dict[str, object]) -> bool:
        """Store a new round (its committed seed); False when the occurrence has one."""
        with self._session() as s:
            return insert_ignore(s, LotteryRound, values, ("campaign_id", "occurrence"))

    def rounds_open(self, campaign_ids: Sequence[str], now: datetime) -> list[Round]:
        """Rounds of these campaigns announced by ``now`` and not drawn yet."""
        if not campaign_ids:
            return []
        stmt = select(LotteryRound).where(
            col(LotteryRound.campaign_id).in_(list(campaign_ids)),
            col(LotteryRound.drawn_at).is_(None),
            col(LotteryRound.occurrence) <= utc(now),
            col(LotteryRound.draw_at) > utc(now),
        )
        with self._session() as s:
            return [_round(r) for r in s.exec(stmt)]

    def enter(
        self, round_id: int, group_id: str, person_id: str, name: str, at: datetime
    ) -> EntryOutcome:
        """Enter a member once; an opted-out member is refused (checked in the same transaction)."""
        with self._session() as s:
            if s.exec(select(PersonRow.opted_out).where(PersonRow.id == person_id)).first():
                return "opted_out"
            values = {
                "round_id": round_id,
                "group_id": group_id,
                "person_id": person_id,
                "person_name": name,
                "entered_at": utc(at),
            }
            added = insert_ignore(s, LotteryEntry, values, ("round_id", "person_id"))
            return "entered" if added else "already"

    def next_draw(self) -> datetime | None:
        """The earliest draw still to do (an index lookup)."""
        stmt = select(sa.func.min(LotteryRound.draw_at)).where(col(LotteryRound.drawn_at).is_(None))
        with self._session() as s:
            return s.exec(stmt).first()

    def due(self, now: datetime) -> list[int]:
        """Rounds whose draw time has come, oldest first."""
        stmt = (
            select(LotteryRound.id)
            .where(col(LotteryRound.drawn_at).is_(None), col(LotteryRound.draw_at) <= utc(now))
            .order_by(col(LotteryRound.draw_at), col(LotteryRound.id))
        )
        with self._session() as s:
            return [i for i in s.exec(stmt) if i is not None]

    def find(self, campaign_id: str, occurrence: datetime) -> Round | None:
        """The round of one occurrence."""
        stmt = select(LotteryRound).where(
            LotteryRound.campaign_id == campaign_id, LotteryRound.occurrence == utc(occurrence)
        )
        with self._session() as s:
            row = s.exec(stmt).first()
            return _round(row) if row is not None else None

    def rounds(self, campaign_id: str) -> list[Round]:
        """Every round of a campaign, oldest first."""
        stmt = (
            select(LotteryRound)
            .where(LotteryRound.campaign_id == campaign_id)
            .order_by(col(LotteryRound.occurrence))
        )
        with self._session() as s:
            return [_round(r) for r in s.exec(stmt)]

    def get(self, round_id: int) -> Round | None:
        """A round by id."""
        with self._session() as s:
            row = s.get(LotteryRound, round_id)
            return _round(row) if row is not None else None

    def entrants(self, round_id: int) -> list[Entrant]:
        """The round's entries with each member's opt-out and presence in the group now."""
        in_group = (
            sa.select(sa.literal(1))
            .where(
                col(Membership.group_id) == col(LotteryEntry.group_id),
                col(Membership.person_id) == col(LotteryEntry.person_id),
                col(Membership.left_at).is_(None),
            )
            .exists()
        )
        stmt = (
            sa.select(
                col(LotteryEntry.id),
                col(LotteryEntry.group_id),
                col(LotteryEntry.person_id),
                col(LotteryEntry.person_name),
                col(LotteryEntry.excluded),
                sa.func.coalesce(PersonRow.opted_out, False),
                in_group,
            )
            .join(PersonRow, col(PersonRow.id) == col(LotteryEntry.person_id), isouter=True)
            .where(col(LotteryEntry.round_id) == round_id)
            .order_by(col(LotteryEntry.group_id), col(LotteryEntry.person_id))
        )
        with self._session() as s:
            return [
                Entrant(i or 0, g, p, n, x, bool(o), bool(m))
                for i, g, p, n, x, o, m in s.execute(stmt)
            ]

    def winners(self, round_id: int) -> list[Winner]:
        """The stored winners, by group then rank."""
        stmt = (
            select(LotteryWinner)
            .where(LotteryWinner.round_id == round_id)
            .order_by(col(LotteryWinner.group_id), col(LotteryWinner.rank))
        )
        with self._session() as s:
            return [Winner(w.group_id, w.person_id, w.rank, w.prize) for w in s.exec(stmt)]


def record_draw(
    s: Session,
    round_id: int,
    now: datetime,
    excluded: dict[int, str],
    winners: Sequence[Winner],
) -> bool:
    """Store a draw in session ``s``: exclusions, winners, ``drawn_at``. False (and nothing
    written) when the round was drawn already, by this process or another."""
    done = s.execute(
        sa.update(LotteryRound)
        .where(col(LotteryRound.id) == round_id, col(LotteryRound.drawn_at).is_(None))
        .values(drawn_at=utc(now))
        .returning(col(LotteryRound.id))
    ).first()
    if done is None:
        return False
    for entry_id, reason in excluded.items():
        s.execute(
            sa.update(LotteryEntry).where(col(LotteryEntry.id) == entry_id).values(excluded=reason)
        )
    for w in winners:
        s.add(
            LotteryWinner(
                round_id=round_id,
                group_id=w.group_id,
                person_id=w.person_id,
                rank=w.rank,
                prize=w.prize,
            )
        )
    s.flush()
    return True


def _round(r: LotteryRound) -> Round:
    return Round(
        id=r.id or 0,
        campaign_id=r.campaign_id,
        occurrence=r.occurrence,
        keyword=r.keyword,
        committed=r.committed,
        seed=r.seed,
        draw_at=r.draw_at,
        winners_per_group=r.winners_per_group,
        prizes=tuple(r.prizes),
        drawn_at=r.drawn_at,
    )
