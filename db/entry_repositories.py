"""Repositories for the entry path: live-code visits (the funnel), group QR codes, referral codes,
the waitlist, and which groups a person is in.

Same conventions as :mod:`db.repositories`: a repository takes a Session (the caller commits) or
an Engine (each call is its own transaction); datetimes in and out are aware (UTC out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from db.models import (
    EntryVisit,
    GroupQrCode,
    Membership,
    ReferralCode,
    WaitlistEntry,
    WelfareGroupRow,
)
from db.repositories import _Repo, insert_ignore, utc


@dataclass(frozen=True)
class VisitFacts:
    """What the funnel needs to know about one visit: when each stage happened."""

    channel: str
    visited_at: datetime
    located_at: datetime | None
    chosen_at: datetime | None
    joined_at: datetime | None
    left_at: datetime | None


@dataclass(frozen=True)
class Located:
    """Where a visitor was placed: how they said it, the WGS-84 point, the area, overflow."""

    how: str
    lat: float
    lon: float
    area: str
    overflow: bool

    def values(self) -> dict[str, Any]:
        """The visit columns this sets (the point rounded to about 100 m: no more is kept)."""
        return {
            "located_how": self.how,
            "lat": round(self.lat, 3),
            "lon": round(self.lon, 3),
            "area": self.area[:100],
            "overflow": self.overflow,
        }


_VISITS = EntryVisit.__table__  # type: ignore[attr-defined]
# Built once: a statement with bind parameters is compiled once and cached by SQLAlchemy, where
# `.values(**literals)` would build and key a new statement per request.
_INSERT_VISIT = sa.insert(_VISITS).returning(_VISITS.c.id)
# A second try: how and where follow it, the first location time is kept.
_RELOCATE_VISIT = (
    sa.update(_VISITS)
    .where(_VISITS.c.id == sa.bindparam("b_id"), _VISITS.c.channel == sa.bindparam("b_channel"))
    .values(
        located_at=sa.func.coalesce(
            _VISITS.c.located_at, sa.bindparam("b_at", type_=_VISITS.c.located_at.type)
        )
    )
    .returning(_VISITS.c.id)
)


@dataclass(frozen=True)
class NewVisit:
    """A visit just recorded: its id and channel (all a caller needs back)."""

    id: str
    channel: str


class EntryRepo(_Repo):
    """Visits to live codes and how far each went: located, group chosen, joined.

    The hot path (a page visit, a location given) is one plain INSERT or UPDATE each on a
    connection of its own, never an ORM object loaded and flushed: the entry API writes once
    per request.
    """

    def _write(self, stmt: Any, params: dict[str, Any]) -> Any:
        """Run one ``… RETURNING`` statement in its own transaction (or in the caller's
        session); the first row returned, or None."""
        if isinstance(self._db, Session):
            return self._db.execute(stmt, params).first()
        with self._db.begin() as conn:
            return conn.execute(stmt, params).first()

    def create(
        self,
        visit_id: str,
        channel: str,
        at: datetime,
        *,
        ref_code: str | None = None,
        referrer_id: str | None = None,
        located: Located | None = None,
        contact_id: str | None = None,
    ) -> NewVisit:
        """Record a visit, already located when ``located`` is given: one INSERT.

        ``contact_id``: the person, when known from the start (a visit in the private chat);
        their join into the group they choose completes it.
        """
        at = utc(at)
        values: dict[str, Any] = {
            "id": visit_id,
            "channel": channel,
            "ref_code": ref_code,
            "referrer_id": referrer_id,
            "invited_contact": contact_id,
            "visited_at": at,
            "located_at": None,
            "located_how": None,
            "lat": None,
            "lon": None,
            "area": None,
            "overflow": False,
        }
        if located is not None:
            values.update(located.values(), located_at=at)
        self._write(_INSERT_VISIT, values)
        return NewVisit(visit_id, channel)

    def relocate(self, visit_id: str, channel: str, at: datetime, located: Located) -> bool:
        """Record where the visitor of an open visit is (a second try updates it): one UPDATE.

        The first location time is kept. False when no visit ``visit_id`` of ``channel`` exists.
        """
        params = {"b_id": visit_id, "b_channel": channel, "b_at": utc(at), **located.values()}
        return self._write(_RELOCATE_VISIT, params) is not None

    def open_visit_of(self, channel: str, contact_id: str, since: datetime) -> str | None:
        """The newest visit of ``channel`` by ``contact_id``, active (begun, located or its
        group chosen) since ``since``, that no join has completed; None when there is none."""
        last_active = sa.func.coalesce(
            _VISITS.c.chosen_at, _VISITS.c.located_at, _VISITS.c.visited_at
        )
        with self._session() as s:
            return s.execute(
                sa.select(_VISITS.c.id)
                .where(
                    _VISITS.c.channel == channel,
                    _VISITS.c.invited_contact == contact_id,
                    _VISITS.c.joined_at.is_(None),
                    last_active >= utc(since),
                )
                .order_by(_VISITS.c.visited_at.desc())
                .limit(1)
            ).scalar_one_or_none()

    def channel_of(self, visit_id: str) -> str | None:
        """The channel a visit came through; None for an unknown visit."""
        with self._session() as s:
            return s.execute(
                sa.select(_VISITS.c.channel).where(_VISITS.c.id == visit_id)
            ).scalar_one_or_none()

    def get(self, visit_id: str) -> EntryVisit | None:
        with self._session() as s:
            return s.get(EntryVisit, visit_id)

    def chosen(
        self, visit_id: str, group_id: str, at: datetime, method: str, invite_code: str | None
    ) -> EntryVisit:
        """Record the group chosen; a later choice replaces an earlier one until the join."""
        with self._session() as s:
            row = s.get(EntryVisit, visit_id)
            if row is None:
                raise LookupError(visit_id)
            if row.joined_at is None:
                if row.chosen_group != group_id or row.join_method != method:
                    row.chosen_at = utc(at)
                row.chosen_group, row.join_method = group_id, method
                if invite_code is not None and row.invite_code is None:
                    row.invite_code = invite_code
            s.flush()
            return row

    def invite_code_taken(self, code: str) -> bool:
        with self._session() as s:
            return (
                s.exec(select(EntryVisit.id).where(EntryVisit.invite_code == code)).first()
                is not None
            )

    def by_invite_code(self, code: str) -> EntryVisit | None:
        with self._session() as s:
            return s.exec(select(EntryVisit).where(EntryVisit.invite_code == code)).first()

    def claim_invite(self, visit_id: str, contact_id: str) -> bool:
        """The person who sent the invite code: their join will be matched to this visit.

        The first claim holds (one conditional ``UPDATE``, so two processes racing cannot
        both win); True for its holder, False for anyone else.
        """
        with self._session() as s:
            s.execute(
                sa.update(EntryVisit)
                .where(
                    col(EntryVisit.id) == visit_id,
                    col(EntryVisit.invited_contact).is_(None),
                    col(EntryVisit.joined_at).is_(None),
                )
                .values(invited_contact=contact_id)
            )
            holder = s.exec(
                select(EntryVisit.invited_contact).where(EntryVisit.id == visit_id)
            ).first()
        return holder in (None, contact_id)

    def match_join(
        self, group_id: str, person_id: str, at: datetime, window: timedelta
    ) -> EntryVisit | None:
        """Mark the visit this join completes, and return it; None when no visit matches.

        The rule (docs/entry.md): first a visit whose invite code this person sent, for this
        group; otherwise the oldest unmatched QR choice of this group within ``window`` before
        the join. Each visit matches at most one join.
        """
        at = utc(at)
        with self._session() as s:
            row = s.exec(
                select(EntryVisit)
                .where(
                    EntryVisit.invited_contact == person_id,
                    EntryVisit.chosen_group == group_id,
                    col(EntryVisit.joined_at).is_(None),
                )
                .order_by(col(EntryVisit.chosen_at).desc())
            ).first()
            if row is None:
                row = s.exec(
                    select(EntryVisit)
                    .where(
                        EntryVisit.chosen_group == group_id,
                        EntryVisit.join_method == "qr",
                        col(EntryVisit.joined_at).is_(None),
                        col(EntryVisit.invited_contact).is_(None),
                        col(EntryVisit.chosen_at) >= at - window,
                        col(EntryVisit.chosen_at) <= at,
                    )
                    .order_by(col(EntryVisit.chosen_at), col(EntryVisit.id))
                ).first()
            if row is None:
                return None
            row.joined_at, row.person_id = at, person_id
            s.flush()
            return row

    def link_membership(self, visit_id: str, membership_id: int | None) -> None:
        with self._session() as s:
            row = s.get(EntryVisit, visit_id)
            if row is not None:
                row.membership_id = membership_id

    def facts(self, since: datetime, until: datetime) -> list[VisitFacts]:
        """Every visit with ``since <= visited_at < until``, with its membership's leave time."""
        # Six columns: past sqlmodel.select's typed overloads, so plain SQLAlchemy.
        stmt = (
            sa.select(
                col(EntryVisit.channel),
                col(EntryVisit.visited_at),
                col(EntryVisit.located_at),
                col(EntryVisit.chosen_at),
                col(EntryVisit.joined_at),
                col(Membership.left_at),
            )
            .select_from(EntryVisit)
            .join(Membership, col(Membership.id) == col(EntryVisit.membership_id), isouter=True)
            .where(
                col(EntryVisit.visited_at) >= utc(since), col(EntryVisit.visited_at) < utc(until)
            )
            .order_by(col(EntryVisit.visited_at))
        )
        with self._session() as s:
            return [VisitFacts(*row) for row in s.execute(stmt)]

    def count(self) -> int:
        with self._session() as s:
            return int(s.exec(select(sa.func.count()).select_from(EntryVisit)).one())


class QrCodeRepo(_Repo):
    """The last join QR payload fetched for each group."""

    def get(self, group_id: str) -> GroupQrCode | None:
        with self._session() as s:
            return s.get(GroupQrCode, group_id)

    def put(self, group_id: str, payload: str, at: datetime) -> None:
        with self._session() as s:
            row = s.get(GroupQrCode, group_id)
            if row is None:
                s.add(GroupQrCode(group_id=group_id, payload=payload, fetched_at=utc(at)))
            else:
                row.payload, row.fetched_at = payload, utc(at)


class ReferralCodeRepo(_Repo):
    """Referral codes issued, one row each; a code not here is unknown."""

    def add(self, code: str, person_id: str, at: datetime) -> bool:
        with self._session() as s:
            return insert_ignore(
                s,
                ReferralCode,
                {"code": code, "person_id": person_id, "issued_at": utc(at)},
                ("code",),
            )

    def owner(self, code: str) -> str | None:
        # A Core read on a plain connection, not an ORM session: the referral webhook asks
        # this for every code it has not seen in the last minute.
        stmt = sa.select(ReferralCode.__table__.c.person_id).where(  # type: ignore[attr-defined]
            ReferralCode.__table__.c.code == code  # type: ignore[attr-defined]
        )
        if isinstance(self._db, Session):
            return self._db.connection().execute(stmt).scalar_one_or_none()
        with self._db.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def of_person(self, person_id: str) -> str | None:
        stmt = (
            select(ReferralCode.code)
            .where(ReferralCode.person_id == person_id)
            .order_by(col(ReferralCode.issued_at))
        )
        with self._session() as s:
            return s.exec(stmt).first()


@dataclass(frozen=True)
class Waiting:
    """A person waiting for a group with room near a WGS-84 point."""

    id: int
    contact: str
    lat: float
    lon: float
    radius_m: float
    waiting_since: datetime


_IN_CHUNK = 500  # bound the IN (...) lists: SQLite and PostgreSQL both take this comfortably


class WaitlistRepo(_Repo):
    """People promised a message when a group with room opens near them (one row per area)."""

    def wait(
        self, contact: str, area: str, lat: float, lon: float, radius_m: float, at: datetime
    ) -> bool:
        """Put ``contact`` on the list for ``area``; True when they were not already waiting.

        Someone told before and waiting again has their row reopened from ``at``.
        """
        at = utc(at)
        values = {
            "contact": contact,
            "area": area,
            "lat": lat,
            "lon": lon,
            "radius_m": radius_m,
            "channel": "chat",
            "created_at": at,
            "waiting_since": at,
        }
        with self._session() as s:
            if insert_ignore(s, WaitlistEntry, values, ("contact", "area")):
                return True
            row = s.exec(
                select(WaitlistEntry).where(
                    WaitlistEntry.contact == contact, WaitlistEntry.area == area
                )
            ).one()
            if row.notified_at is None:
                return False
            row.lat, row.lon, row.radius_m = lat, lon, radius_m
            row.waiting_since, row.notified_at, row.notified_group = at, None, None
            return True

    def any_waiting(self) -> bool:
        """Whether anyone at all is waiting (a cheap check before looking by area)."""
        stmt = select(WaitlistEntry.id).where(col(WaitlistEntry.notified_at).is_(None)).limit(1)
        with self._session() as s:
            return s.exec(stmt).first() is not None

    def waiting_in(self, areas: Iterable[str]) -> list[Waiting]:
        """Everyone still waiting in these areas (by the area index, never a full scan)."""
        keys = sorted(set(areas))
        found: list[Waiting] = []
        with self._session() as s:
            for i in range(0, len(keys), _IN_CHUNK):
                stmt = (
                    select(WaitlistEntry)
                    .where(
                        col(WaitlistEntry.area).in_(keys[i : i + _IN_CHUNK]),
                        col(WaitlistEntry.notified_at).is_(None),
                    )
                    .order_by(col(WaitlistEntry.id))
                )
                found.extend(
                    Waiting(r.id or 0, r.contact, r.lat, r.lon, r.radius_m, r.waiting_since)
                    for r in s.exec(stmt)
                )
        return found

    def notified(self, ids: Iterable[int], group_id: str, at: datetime) -> int:
        """Mark rows as told about ``group_id``; returns how many were still waiting."""
        ids = list(ids)
        if not ids:
            return 0
        with self._session() as s:
            result = s.execute(
                sa.update(WaitlistEntry)
                .where(col(WaitlistEntry.id).in_(ids), col(WaitlistEntry.notified_at).is_(None))
                .values(notified_at=utc(at), notified_group=group_id)
                .returning(col(WaitlistEntry.id))
            )
            return len(result.all())

    def of_contact(self, contact: str) -> list[WaitlistEntry]:
        """Every row of one person (for ops and tests)."""
        with self._session() as s:
            stmt = select(WaitlistEntry).where(WaitlistEntry.contact == contact)
            return list(s.exec(stmt.order_by(col(WaitlistEntry.id))))


class SeatsRepo(_Repo):
    """Which groups a person is in, and each group's seats: the questions routing asks."""

    def groups_of(self, person_id: str) -> set[str]:
        """The groups ``person_id`` is in now (open memberships)."""
        stmt = select(Membership.group_id).where(
            Membership.person_id == person_id, col(Membership.left_at).is_(None)
        )
        with self._session() as s:
            return set(s.exec(stmt))

    def seats(self) -> dict[str, tuple[int, int]]:
        """``group id -> (members, capacity)`` as stored, for every known group."""
        stmt = select(WelfareGroupRow.id, WelfareGroupRow.member_count, WelfareGroupRow.capacity)
        with self._session() as s:
            return {gid: (members, capacity) for gid, members, capacity in s.exec(stmt)}

    def members(self, group_id: str) -> int | None:
        """The stored member count of one group, or None for an unknown group."""
        with self._session() as s:
            row = s.get(WelfareGroupRow, group_id)
            return row.member_count if row is not None else None
