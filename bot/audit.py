"""The audit log: every action of the bot with its reason, read from the outbox (``qunfu audit``).

Every send goes through the outbox, and each row says why it was queued (``outbox.reason``:
``campaign:<id>``, ``ticket:<n>``, ``moderation:<rule>``, ``command:<name>``, ``entry-flow``,
``waitlist``, ``lottery``, ``referral``...; rows older than the column get one from their
campaign or key, :func:`bot.outbox.reason_for`). Sent rows are listed at their send time,
the others (pending, failed, uncertain) at the time they were due.

Rows are streamed, never read all at once: a million-row audit log costs a cursor and a
small buffer. Sent rows come through ``ix_outbox_sent_at`` in time order, the few others by
``not_before``, and the two are merged; ``--group`` reads ``ix_outbox_group_id`` instead. Texts
are shown masked (card, ID and phone numbers) and cut short.

``--group`` is the rows' ``group_id``: private messages about a group carry it too (a ticket's
sends, and the answers to a manager's ``#n`` commands on it: :meth:`bot.tickets.TicketDesk._tell`).
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import col

from bot.outbox import reason_for
from bot.privacy import mask_text
from db.models import OutboxRow
from db.repositories import as_utc
from scheduler.clock import SHANGHAI

__all__ = ["AuditEntry", "audit_entries", "day_range"]

_BATCH = 1000
_PREVIEW_CHARS = 40
_COLUMNS = (
    col(OutboxRow.id),
    col(OutboxRow.key),
    col(OutboxRow.action),
    col(OutboxRow.conversation),
    col(OutboxRow.contact),
    col(OutboxRow.account),
    col(OutboxRow.reason),
    col(OutboxRow.campaign_id),
    col(OutboxRow.group_id),
    col(OutboxRow.status),
    col(OutboxRow.text),
    col(OutboxRow.not_before),
    col(OutboxRow.sent_at),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action of the bot as ops see it; ``text`` is masked and cut short."""

    at: datetime
    action: str
    to: str
    account: str
    reason: str
    status: str
    text: str
    group: str | None
    key: str

    def as_json(self) -> dict[str, Any]:
        """The ``qunfu audit --json`` object."""
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "to": self.to,
            "account": self.account,
            "reason": self.reason,
            "status": self.status,
            "text": self.text,
            "group": self.group,
            "key": self.key,
        }


def day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """``[first 00:00, last + 1 day 00:00)`` in Asia/Shanghai; None leaves that side open."""
    start = datetime.combine(first, time(0), SHANGHAI) if first else None
    end = datetime.combine(last + timedelta(days=1), time(0), SHANGHAI) if last else None
    return start, end


def audit_entries(
    engine: Engine,
    *,
    group: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[AuditEntry]:
    """The bot's actions in ``[start, end)`` (in ``group`` when given), in time order, streamed."""
    with contextlib.ExitStack() as stack:
        streams = [
            _stream(stack.enter_context(engine.connect()), _query(s, group, start, end))
            for s in _STATUS_SETS
        ]
        for _, entry in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield entry


# Each set read through the partial index whose predicate it repeats (statuses as literals,
# as bot/outbox.py writes them): the audit log by send time, the live and held rows by due time.
_STATUS_SETS = (("sent",), ("pending",), ("sending", "failed", "uncertain"))


def _query(
    statuses: tuple[str, ...], group: str | None, start: datetime | None, end: datetime | None
) -> Any:
    at = col(OutboxRow.sent_at) if statuses == ("sent",) else col(OutboxRow.not_before)
    literals: list[Any] = [sa.literal_column(f"'{s}'") for s in statuses]
    status = col(OutboxRow.status)
    where = status == literals[0] if len(literals) == 1 else status.in_(literals)
    stmt = sa.select(*_COLUMNS).where(where)
    if group is not None:
        stmt = stmt.where(col(OutboxRow.group_id) == group)
    if start is not None:
        stmt = stmt.where(at >= start)
    if end is not None:
        stmt = stmt.where(at < end)
    return stmt.order_by(at, col(OutboxRow.id))


def _stream(conn: sa.Connection, stmt: Any) -> Iterator[tuple[tuple[datetime, int], AuditEntry]]:
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(stmt)
    for row in result:
        entry = _entry(row)
        yield (entry.at, row.id), entry


def _entry(row: Any) -> AuditEntry:
    at = as_utc(row.sent_at if row.status == "sent" else row.not_before).astimezone(SHANGHAI)
    to = f"contact:{row.contact}" if row.action != "say" and row.contact else row.conversation
    text = " ".join(mask_text(row.text or "").split())
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + "…"
    return AuditEntry(
        at=at,
        action=row.action,
        to=to,
        account=row.account,
        reason=row.reason or reason_for(row.key, row.campaign_id),
        status=row.status,
        text=text,
        group=row.group_id,
        key=row.key,
    )
