"""Storage of tickets (bot/tickets.py): open, answer, resolve, and the SLA steps.

Same conventions as :mod:`db.repositories`: a repository takes a Session (the caller commits,
e.g. inside an outbox transaction) or an Engine (each call is its own transaction). State
changes are compare-and-set updates, so two processes acting on one ticket cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from db.models import TicketRow
from db.repositories import MembershipRepo, _Repo, insert_ignore, utc

TICKETS: sa.Table = TicketRow.__table__  # type: ignore[attr-defined]
_UNRESOLVED = ("open", "pending")


@dataclass(frozen=True)
class Ticket:
    """A ticket as stored; ``number`` is what people write (``#12``). Texts are masked."""

    number: int
    key: str
    status: str
    priority: str
    group_id: str
    member_id: str
    member_name: str
    question: str
    topic: str
    manager_id: str | None
    manager_contact: str | None
    escalated_to: tuple[str, ...]
    created_at: datetime
    waiting_since: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    sla_stage: int
    sla_due_at: datetime | None
    sla_missed_at: datetime | None
    answers: int

    def answerable_by(self, contact: str) -> bool:
        """Whether ``contact`` is the ticket's manager or someone it was escalated to."""
        return contact == self.manager_contact or contact in self.escalated_to


def _ticket(row: Any) -> Ticket:
    m = row._mapping
    values = {f: m[f] for f in Ticket.__dataclass_fields__ if f not in ("number", "escalated_to")}
    return Ticket(
        number=m["id"],
        escalated_to=tuple(c for c in (m["escalated_to"] or "").split("|") if c),
        **values,
    )


def join_contacts(contacts: tuple[str, ...] | list[str]) -> str:
    """``escalated_to`` as stored: ``|a|b|`` (a LIKE ``%|a|%`` finds one contact exactly)."""
    return "|" + "|".join(contacts) + "|" if contacts else ""


class TicketRepo(_Repo):
    """Tickets by number; open ones by manager; the earliest SLA step."""

    def open(self, values: dict[str, Any]) -> tuple[Ticket, bool]:
        """Insert a ticket unless one with ``values["key"]`` exists; (the ticket, inserted)."""
        values = {**values, "escalated_to": join_contacts(values.get("escalated_to", ()))}
        by_key = sa.select(TICKETS).where(TICKETS.c.key == values["key"])
        with self._session() as s:
            # Looked up first: a conflicting INSERT would burn a number (sequences and SQLite's
            # AUTOINCREMENT advance anyway), leaving gaps when an event is handled again. The
            # INSERT still guards against two processes racing on one key.
            row = s.execute(by_key).first()
            if row is not None:
                return _ticket(row), False
            inserted = insert_ignore(s, TicketRow, values, ["key"])
            return _ticket(s.execute(by_key).one()), inserted

    def get(self, number: int) -> Ticket | None:
        """The ticket with this number, or None."""
        with self._session() as s:
            row = s.execute(sa.select(TICKETS).where(TICKETS.c.id == number)).first()
            return _ticket(row) if row is not None else None

    def answered(self, number: int, at: datetime) -> bool:
        """Record an answer: first response (once), status pending, SLA timers stopped."""
        with self._session() as s:
            row = s.execute(
                sa.update(TICKETS)
                .where(TICKETS.c.id == number, TICKETS.c.status.in_(_UNRESOLVED))
                .values(
                    status="pending",
                    answers=TICKETS.c.answers + 1,
                    first_response_at=sa.func.coalesce(TICKETS.c.first_response_at, utc(at)),
                    sla_due_at=None,
                )
                .returning(TICKETS.c.id)
            ).first()
            return row is not None

    def resolve(self, number: int, by: str, at: datetime) -> bool:
        """Resolve an unresolved ticket; False when it was resolved already (or is unknown)."""
        with self._session() as s:
            row = s.execute(
                sa.update(TICKETS)
                .where(TICKETS.c.id == number, TICKETS.c.status.in_(_UNRESOLVED))
                .values(status="resolved", resolved_at=utc(at), resolved_by=by, sla_due_at=None)
                .returning(TICKETS.c.id)
            ).first()
            return row is not None

    def member_left(self, ticket: Ticket) -> bool:
        """Whether the ticket's member has left its group: the membership ledger has a stay of
        theirs there and none is open (a seeded member's leave is recorded as a stay too).
        False while they are in it, and for someone the ledger has never seen join or leave
        (members seeded from the directory): they are taken to be still there.
        """
        with self._session() as s:
            stays = MembershipRepo(s).history(ticket.group_id, ticket.member_id)
        return bool(stays) and all(stay.left_at is not None for stay in stays)

    def unresolved_for(
        self, contact: str, limit: int = 20, *, unassigned: bool = False
    ) -> list[Ticket]:
        """Unresolved tickets ``contact`` manages or was escalated to, oldest first; with
        ``unassigned`` (an ops contact asking) also those nobody was given (no manager, no ops
        contact when they were opened)."""
        mine = [
            TICKETS.c.manager_contact == contact,
            TICKETS.c.escalated_to.like(f"%|{_like_escape(contact)}|%", escape="\\"),
        ]
        if unassigned:
            mine.append(sa.and_(TICKETS.c.manager_contact.is_(None), TICKETS.c.escalated_to == ""))
        with self._session() as s:
            rows = s.execute(
                sa.select(TICKETS)
                .where(TICKETS.c.status.in_(_UNRESOLVED), sa.or_(*mine))
                .order_by(TICKETS.c.id)
                .limit(limit)
            ).all()
            return [_ticket(r) for r in rows]

    def next_sla_due(self) -> datetime | None:
        """The earliest pending SLA step (one entry of ``ix_ticket_sla_due``)."""
        with self._session() as s:
            return s.execute(
                sa.select(col(TicketRow.sla_due_at))
                .where(col(TicketRow.sla_due_at).is_not(None))
                .order_by(col(TicketRow.sla_due_at))
                .limit(1)
            ).scalar_one_or_none()

    def sla_due(self, now: datetime, limit: int = 200) -> list[Ticket]:
        """Tickets whose next SLA step is due at ``now``, earliest first."""
        with self._session() as s:
            rows = s.execute(
                sa.select(TICKETS)
                .where(TICKETS.c.sla_due_at.is_not(None), TICKETS.c.sla_due_at <= utc(now))
                .order_by(TICKETS.c.sla_due_at, TICKETS.c.id)
                .limit(limit)
            ).all()
            return [_ticket(r) for r in rows]

    def advance(
        self,
        number: int,
        stage: int,
        *,
        due: datetime | None,
        missed_at: datetime | None = None,
        escalated_to: tuple[str, ...] | None = None,
    ) -> bool:
        """Move an open ticket from SLA ``stage`` to the next; False if another process did.

        ``missed_at`` is recorded only when no miss is recorded yet (a miss counts once).
        """
        values: dict[str, Any] = {"sla_stage": stage + 1, "sla_due_at": due and utc(due)}
        if missed_at is not None:
            values["sla_missed_at"] = sa.func.coalesce(TICKETS.c.sla_missed_at, utc(missed_at))
        if escalated_to is not None:
            values["escalated_to"] = join_contacts(escalated_to)
        with self._session() as s:
            row = s.execute(
                sa.update(TICKETS)
                .where(
                    TICKETS.c.id == number,
                    TICKETS.c.sla_stage == stage,
                    TICKETS.c.status == "open",
                )
                .values(**values)
                .returning(TICKETS.c.id)
            ).first()
            return row is not None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
