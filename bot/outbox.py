"""The outbox: the single path by which the bot sends anything.

Services enqueue :class:`OutboxItem` values with an idempotency key (for a campaign: campaign id
+ group id + occurrence); the key is unique in the database, so enqueueing again, in this process
or after a restart, adds nothing. Delivery is paced per bot account (never above
``rate_per_minute`` in any 60-second window, jitter drawn inside the interval: see
:mod:`bot.pacing`), keeps marketing out of quiet hours, and retries :class:`GatewayError` with
exponential backoff. Rows with status ``sent`` are the audit log; :meth:`Outbox.prune` removes
(and optionally archives) those older than ``outbox.retention`` when ops run
``qunfu outbox prune``, never by itself.

Cost does not grow with history. Each account's pacing state is one row of ``outbox_pacing``,
taken by compare-and-set in the same transaction that marks a row ``sending`` (the instant of
that transaction is the gateway call pacing counts from). Claims and :meth:`Outbox.next_due`
read pending rows through partial indexes (``WHERE status = 'pending'``), and no index puts the
sent rows next to the live ones, so a million sent rows cost nothing: see "Outbox at scale" in
docs/design-notes.md for the query plans. Statuses are written into the SQL as literals, the way
the index predicates spell them, so every plan (prepared, generic or re-prepared) can use them.

Crash safety (at most once). A row is marked ``sending`` and committed *before* the gateway is
called, then marked ``sent`` after. If the process dies in between we cannot know whether the
platform got the message, so :meth:`Outbox.recover` turns such rows into ``uncertain`` and they
are never resent automatically: a duplicate marketing push to hundreds of members is worse than
one missing message, and an ops person can look at the uncertain rows (they are logged) and
requeue one with :meth:`Outbox.requeue` if it really was lost.

Database calls are short, synchronous methods; :meth:`Outbox.deliver_due` runs them in worker
threads (transient faults retried, :mod:`bot.retry`), so only ``gateway.perform`` waits on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import gzip
import json
import random
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from loguru import logger
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.config import AccountSettings, OutboxSettings, QuietHours
from bot.events import Action, Invite, Remove, Say, room_conv
from bot.gateways.base import ChatGateway, DeliveryUnknown, GatewayError, Undeliverable
from bot.pacing import Pacer
from bot.retry import DEFAULT_POLICY, RetryPolicy
from bot.wakeups import notify
from db.models import OUTBOX_STATUSES, OutboxPacing, OutboxRow
from db.repositories import as_utc, insert_ignore_many, insert_ignore_rows
from db.session import session_factory
from scheduler.clock import SHANGHAI, Clock, aware

OutboxStatus = Literal["pending", "sending", "sent", "failed", "uncertain"]
EXPIRED = "expired: later than outbox.grace"
"""``last_error`` of a marketing send that waited past ``outbox.grace`` (status ``failed``)."""
_PREVIEW_CHARS = 6
_ERROR_CHARS = 300


_T = TypeVar("_T")
_HOLD_WHILE_DOWN = timedelta(seconds=1)
# Rows looked at per claim query: the first usually goes; more only when expired ones lead.
_SLICE = 50
_PRUNE_BATCH = 5000


def _status_is(status: str) -> Any:
    """``status = '<status>'`` with the value inline, as the partial indexes' predicates say it."""
    assert status in OUTBOX_STATUSES  # a literal, never data
    return col(OutboxRow.status) == sa.literal_column(f"'{status}'")


_PENDING = _status_is("pending")
_SENT = _status_is("sent")
_ATTENTION_STATUSES = ("sending", "failed", "uncertain")
# The predicate of ix_outbox_attention, added to queries of one of those statuses.
_ATTENTION = col(OutboxRow.status).in_([sa.literal_column(f"'{s}'") for s in _ATTENTION_STATUSES])


PRIORITY_CONVERSATION = 0
"""What a person is waiting for: replies, tickets, moderation, invitations, welcomes."""
PRIORITY_PUSH = 1
"""Campaign pushes: an account sends them only when no conversation row is due."""
_PRIORITIES = (PRIORITY_CONVERSATION, PRIORITY_PUSH)


# An expired send: outbox id, key, campaign and group (for the log line and the count).
_Expired = tuple[int, str, str | None, str | None]


class _LostRace(Exception):
    """Another process took the slot or the row first; the claim transaction rolls back."""


@dataclass(frozen=True)
class OutboxItem:
    """One send to make, no earlier than ``not_before``; ``key`` makes it happen at most once."""

    key: str
    action: Action
    not_before: datetime
    campaign_id: str | None = None
    group_id: str | None = None
    marketing: bool = False
    account: str = "bot"
    """Asked for; the outbox's ``route`` (:class:`bot.accounts.AccountBook`) has the last word:
    anything in a group goes through the group's account."""
    reason: str | None = None
    """Why the bot sends it, for the audit log: ``moderation:ad.cashout``, ``command:optout``...
    None: :func:`reason_for` (campaign or ticket id, the running handler, the key's prefix)."""
    priority: int | None = None
    """:data:`PRIORITY_CONVERSATION` or :data:`PRIORITY_PUSH` (claimed first to last); None:
    a push when ``marketing``, else a conversation. The account's rate caps both."""


@dataclass(frozen=True)
class ExpiredSend:
    """A marketing send that waited past ``outbox.grace`` and was never sent."""

    key: str
    campaign_id: str | None
    group_id: str | None
    account: str
    not_before: datetime

    @property
    def occurrence(self) -> str | None:
        """The campaign occurrence it belonged to (ISO fire time, from the key), if any."""
        if not self.campaign_id or not self.key.startswith(self.campaign_id + ":"):
            return None
        rest = self.key[len(self.campaign_id) + 1 :]
        _, sep, fire_at = rest.partition(":")
        return fire_at if sep else None


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`Outbox.prune` did (or, with ``dry_run``, would do)."""

    rows: int
    before: datetime
    oldest: datetime | None
    newest: datetime | None
    archive: Path | None
    dry_run: bool = False


@dataclass(frozen=True)
class OutboxRecord:
    """A row of the outbox as the domain sees it; times are aware, in Asia/Shanghai."""

    key: str
    action: Action
    account: str
    status: OutboxStatus
    attempts: int
    not_before: datetime
    sent_at: datetime | None
    campaign_id: str | None
    group_id: str | None
    marketing: bool
    last_error: str | None
    reason: str | None = None


SEND_REASON: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "qunfu_send_reason", default=None
)
"""The reason of sends queued without one of their own: the dispatcher sets the running
handler's name (``command:join``, ``entry-flow``...). A context variable, so it follows the
handler into the worker threads its database calls run in (``asyncio.to_thread`` copies it)."""


def reason_for(key: str, campaign_id: str | None, fallback: str | None = None) -> str:
    """The reason of a send queued without one: its ticket (``ticket:<n>``) or campaign
    (``campaign:<id>``), else ``fallback`` (the running handler), else its key's first part
    (``waitlist``, ``lottery``, ``referral``, ``overflow``...)."""
    if campaign_id:
        return campaign_id if campaign_id.startswith("ticket:") else f"campaign:{campaign_id}"
    if fallback:
        return fallback
    return key.partition(":")[0] or "unknown"


def preview(text: str | None) -> str:
    """A log-safe glimpse of a message: its first few characters and its length."""
    if not text:
        return ""
    head = text[:_PREVIEW_CHARS]
    return f"{head}…({len(text)} chars)" if len(text) > _PREVIEW_CHARS else head


class Outbox:
    """Durable, paced, retried sending. See the module docstring for the guarantees."""

    def __init__(
        self,
        db: Engine | Callable[[], Session],
        settings: OutboxSettings,
        quiet: QuietHours,
        clock: Clock,
        accounts: Sequence[AccountSettings] = (),
    ) -> None:
        self._sessions: Callable[[], Session] = (
            session_factory(db) if isinstance(db, Engine) else db
        )
        self._settings = settings
        self._quiet = quiet
        self._clock = clock
        self._pacer = Pacer(settings.rate_per_minute, settings.jitter)
        # Each account its own rate and daily cap; an account not configured (rows left by an
        # account since removed) paces at the outbox's defaults.
        self._pacers = {
            a.id: Pacer(a.rate_per_minute or settings.rate_per_minute, settings.jitter)
            for a in accounts
        }
        self._caps = {
            a.id: a.daily_cap if a.daily_cap is not None else settings.daily_cap for a in accounts
        }
        self._rng = random.Random(settings.seed)
        self._held_until: datetime | None = None
        self._down: set[str] = set()
        self.retry: RetryPolicy = DEFAULT_POLICY
        self.route: Callable[[Action, str | None], str] | None = None
        """Which account sends an item (set by the composition root); None: the item's own."""
        self.local: Callable[[], frozenset[str]] | None = None
        """The accounts this process sends for (a lease manager narrows it); None: all."""
        self.expired = 0
        # Accounts whose pacing row is known to exist (rows are never deleted): a fan-out's
        # batches then insert none, rather than one statement each.
        self._paced: set[str] = set()
        """Marketing sends expired past the grace by this outbox (counted; see ExpiryReport)."""

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue(
        self,
        items: Iterable[OutboxItem],
        *,
        also: Callable[[Session], object] | None = None,
    ) -> int:
        """Store new sends; keys already in the outbox are ignored. Returns how many were new.

        ``also`` runs in the same transaction, so the state change that caused the sends (a
        batch marked welcomed, say) commits together with them or not at all.
        """
        now = self._clock.now()
        batch = list(items)
        if not batch:
            return 0
        if self.route is not None:
            route = self.route
            batch = [
                i if (a := route(i.action, i.account)) == i.account else replace(i, account=a)
                for i in batch
            ]
        by_key = {item.key: item for item in batch}
        fallback = SEND_REASON.get()
        # Plain tuples through one executemany, no RETURNING: a 20,000-group fan-out is queued
        # at the speed of the inserts themselves (the unique key keeps it idempotent).
        rows = [_row_values(i, now, fallback) for i in by_key.values()]
        with self._sessions() as s, s.begin():
            added = insert_ignore_rows(s, OutboxRow, _ROW_COLUMNS, rows, "key")
            accounts = sorted({i.account for i in by_key.values()} - self._paced)
            # Every account with sends has a pacing row: next_due and claims start from them.
            if accounts:
                pacing = [{"account": a, "calls": 0} for a in accounts]
                insert_ignore_many(s, OutboxPacing, pacing, "account")
            if also is not None:
                also(s)
            if added:
                notify(s.connection())  # other processes (PostgreSQL) wake for them
        self._paced.update(accounts)  # committed
        first = batch[0]
        self._log(first.key, first.account, first.campaign_id, first.group_id).bind(
            items=len(by_key), added=added
        ).debug("outbox: queued {} of {} sends (first: {})", added, len(by_key), first.key)
        return added

    # -- timing ----------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest instant something may be sent (pacing, retries, quiet hours), or None.

        One query: per pacing row (one per account), the earliest pending non-marketing and
        marketing row, each an O(log n) lookup in ``ix_outbox_pending_due``.
        """
        with self._sessions() as s:
            rows = s.execute(
                sa.select(
                    *_PACING_STATE,
                    _earliest_pending(marketing=False),
                    _earliest_pending(marketing=True),
                )
            ).all()
        best: datetime | None = None
        local = self.local() if self.local is not None else None
        for account, due_at, last_call_at, day, day_calls, plain, marketing in rows:
            if account in self._down or (local is not None and account not in local):
                continue  # a down account is looked at again with _held_until
            gate = self._gate(account, due_at, last_call_at, day, day_calls)
            for earliest, is_marketing in ((plain, False), (marketing, True)):
                if earliest is None:
                    continue
                when = as_utc(earliest)
                if gate is not None and gate > when:
                    when = gate
                if is_marketing:
                    when = self._after_quiet(when)
                best = when if best is None or when < best else best
        if best is not None and self._held_until is not None and self._held_until > best:
            best = self._held_until
        return best.astimezone(SHANGHAI) if best is not None else None

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self, gateway: ChatGateway) -> list[OutboxRecord]:
        """Send what is due now, oldest first per account, as pacing allows; returns what was sent.

        An account whose pacing slot has not come yet is skipped until the next call; so is a
        marketing item while quiet hours last. While the gateway says it cannot send (its
        connection is down), nothing is attempted: sends wait, their retries unspent, and are
        looked at again a second later.
        """
        now = self._clock.now()
        ready = getattr(gateway, "ready", None)
        if callable(ready) and not ready():
            self._held_until = now + _HOLD_WHILE_DOWN
            return []
        self._held_until = None
        sent: list[OutboxRecord] = []
        local = self.local() if self.local is not None else None
        down: set[str] = set()
        # Database work in worker threads (transient faults retried): only the gateway call
        # is awaited on the loop. A fault that outlasts the retries raises with nothing lost:
        # an unclaimed row stays pending, a claimed one `sending` (uncertain after a restart).
        for account in await self._off_loop(self._open_accounts, now):
            if local is not None and account not in local:
                continue
            sender = account_gateway(gateway, account)
            if sender is not gateway and not sender.ready():
                # This account's sends wait (the others keep going); its marketing past the
                # grace expires as always, counted.
                down.add(account)
                await self._off_loop(self.expire_stale, account)
                continue
            while (row := await self._off_loop(self.claim, account)) is not None:
                record = await self._deliver_one(sender, row)
                if record.status == "sent":
                    sent.append(record)
        self._down = down
        if down:
            self._held_until = now + _HOLD_WHILE_DOWN
        return sent

    def _open_accounts(self, now: datetime) -> list[str]:
        """Accounts whose pacing slot (and daily cap) allows a send at ``now``, by id."""
        with self._sessions() as s:
            return [
                account
                for account, *state in s.execute(
                    sa.select(*_PACING_STATE).order_by(col(OutboxPacing.account))
                )
                if (gate := self._gate(account, *state)) is None or gate <= now
            ]

    def _gate(
        self,
        account: str,
        due_at: datetime | None,
        last_call_at: datetime | None,
        day: date | None,
        day_calls: int,
    ) -> datetime | None:
        """When ``account`` may call next: its pacing, and past a reached daily cap the next
        Asia/Shanghai midnight (None: right away)."""
        gate = self._pacers.get(account, self._pacer).gate(due_at, last_call_at)
        cap = self._caps.get(account, self._settings.daily_cap)
        if cap is None:
            return gate
        today = self._clock.now().astimezone(SHANGHAI).date()
        if cap == 0 or (day == today and day_calls >= cap):
            midnight = datetime.combine(today + timedelta(days=1), time(0), SHANGHAI)
            return midnight if gate is None else max(gate, midnight)
        return gate

    async def _off_loop(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)`` in a worker thread, transient faults retried with backoff.
        Each ``fn`` is one transaction (rolled back whole by a fault), so a retry is safe."""
        name = getattr(fn, "__qualname__", "outbox")
        return await self.retry.call_async(
            lambda: asyncio.to_thread(fn, *args, **kwargs), what=name
        )

    def claim(self, account: str) -> OutboxRow | None:
        """Take ``account``'s pacing slot and its oldest sendable row, marked ``sending``.

        Returns None when the account's slot has not come, nothing is sendable, another
        process holds the account (:attr:`local`), or it won the slot or the row (the row is
        locked ``FOR UPDATE SKIP LOCKED``). Marketing rows past ``outbox.grace`` met on the way
        are expired (status ``failed``, never sent). The clock's now is the gateway call the
        slot is counted from: the caller calls the gateway right after.
        """
        if self.local is not None and account not in self.local():
            return None  # another process holds the account
        now = self._clock.now()
        quiet_now = self._quiet.contains(now.astimezone(SHANGHAI).time())
        expired: list[_Expired] = []
        try:
            with self._sessions() as s, s.begin():
                pacing = s.get(OutboxPacing, account)
                if pacing is None:
                    return None
                gate = self._gate(
                    account, pacing.due_at, pacing.last_call_at, pacing.day, pacing.day_calls
                )
                if gate is not None and gate > now:
                    return None
                row_id = self._first_sendable(s, account, now, quiet_now, expired)
                if row_id is None:
                    return None
                self._take_slot(s, pacing, now)
                # Compare-and-set against another claim: lock the row by primary key and check
                # its status. Not `UPDATE ... WHERE id = ? AND status = 'pending'`: that makes
                # PostgreSQL weigh a whole scan of a pending index (costed from statistics in
                # which nothing was pending) against the primary key, and it took the scan.
                # SQLite has no row locks, but the slot update above holds its write lock.
                # SKIP LOCKED: a row another process has in hand is passed over, never waited
                # for (several processes on PostgreSQL, docs/deployment.md).
                status = s.execute(
                    sa.select(col(OutboxRow.status))
                    .where(col(OutboxRow.id) == row_id)
                    .with_for_update(skip_locked=True)
                ).scalar_one_or_none()
                if status != "pending":
                    raise _LostRace
                row = s.scalars(
                    sa.update(OutboxRow)
                    .where(col(OutboxRow.id) == row_id)
                    .values(status="sending", attempts=OutboxRow.attempts + 1, last_attempt_at=now)
                    .returning(OutboxRow)
                ).one()
        except _LostRace:
            expired.clear()  # rolled back with the rest
            return None
        finally:
            self._expired(expired, account)
        return row

    def _expired(self, expired: list[_Expired], account: str) -> None:
        """Count and log sends just expired (committed): nothing expires silently."""
        self.expired += len(expired)
        for row_id, key, campaign, group in expired:
            logger.bind(
                outbox_id=row_id, outbox_key=key, account=account, campaign=campaign, group=group
            ).warning("outbox: marketing send expired after waiting past the grace period")

    def expire_stale(self, account: str) -> int:
        """Expire ``account``'s marketing sends already past the grace (its gateway is down, so
        no claim meets them); returns how many. Walks the claim index in slices."""
        now = self._clock.now()
        expired: list[_Expired] = []
        with self._sessions() as s, s.begin():
            rows = s.execute(
                sa.select(
                    col(OutboxRow.id),
                    col(OutboxRow.key),
                    col(OutboxRow.campaign_id),
                    col(OutboxRow.group_id),
                    col(OutboxRow.not_before),
                )
                .where(
                    _PENDING,
                    col(OutboxRow.account) == account,
                    col(OutboxRow.not_before) <= now - self._settings.grace,
                    col(OutboxRow.marketing) == True,  # noqa: E712 - SQL
                )
                .order_by(col(OutboxRow.not_before), col(OutboxRow.id))
                .limit(_PRUNE_BATCH)
            ).all()
            stale = [
                r
                for r in rows
                if now - self._after_quiet(as_utc(r.not_before)) > self._settings.grace
            ]
            if stale:
                s.execute(
                    sa.update(OutboxRow)
                    .where(col(OutboxRow.id).in_([r.id for r in stale]))
                    .values(status="failed", last_error=EXPIRED)
                )
            expired = [(r.id, r.key, r.campaign_id, r.group_id) for r in stale]
        self._expired(expired, account)
        return len(expired)

    def _first_sendable(
        self,
        s: Session,
        account: str,
        now: datetime,
        quiet_now: bool,
        expired: list[_Expired],
    ) -> int | None:
        """The id of ``account``'s oldest row that may go now, the most urgent priority first
        (a member's reply never waits behind a push); expires stale marketing on the way."""
        for i, priority in enumerate(_PRIORITIES):
            row_id = self._first_sendable_of(s, account, priority, now, quiet_now, expired)
            if row_id is not None:
                for later in _PRIORITIES[i + 1 :]:  # stale pushes expire whoever goes first
                    self._expire_head(s, account, later, now, expired)
                return row_id
        return None

    def _expire_head(
        self, s: Session, account: str, priority: int, now: datetime, expired: list[_Expired]
    ) -> None:
        """Expire the marketing rows of one priority already past the grace (at most a slice:
        the rest go at later claims). A range of the claim index: only stale rows are read."""
        rows = s.execute(
            sa.select(
                col(OutboxRow.id),
                col(OutboxRow.not_before),
                col(OutboxRow.key),
                col(OutboxRow.campaign_id),
                col(OutboxRow.group_id),
            )
            .where(
                _PENDING,
                col(OutboxRow.account) == account,
                col(OutboxRow.priority) == priority,
                col(OutboxRow.not_before) < now - self._settings.grace,
                col(OutboxRow.marketing) == True,  # noqa: E712 - SQL
            )
            .order_by(col(OutboxRow.not_before), col(OutboxRow.id))
            .limit(_SLICE)
        ).all()
        stale = [
            r for r in rows if now - self._after_quiet(as_utc(r.not_before)) > self._settings.grace
        ]
        if stale:
            s.execute(
                sa.update(OutboxRow)
                .where(col(OutboxRow.id).in_([r.id for r in stale]))
                .values(status="failed", last_error=EXPIRED)
            )
            expired.extend((r.id or 0, r.key, r.campaign_id, r.group_id) for r in stale)

    def _first_sendable_of(
        self,
        s: Session,
        account: str,
        priority: int,
        now: datetime,
        quiet_now: bool,
        expired: list[_Expired],
    ) -> int | None:
        """:meth:`_first_sendable` within one priority: a range of the claim index."""
        after: tuple[datetime, int] | None = None
        while True:
            stmt = (
                sa.select(
                    col(OutboxRow.id),
                    col(OutboxRow.marketing),
                    col(OutboxRow.not_before),
                    col(OutboxRow.next_attempt_at),
                    col(OutboxRow.key),
                    col(OutboxRow.campaign_id),
                    col(OutboxRow.group_id),
                )
                .where(
                    _PENDING,
                    col(OutboxRow.account) == account,
                    col(OutboxRow.priority) == priority,
                    # not_before, not next_attempt_at: a range on the claim index's own order,
                    # so the planner walks ix_outbox_pending_claim with no sort (next_attempt_at
                    # is never earlier than not_before; retries waiting out a backoff are skipped
                    # below, and there are few).
                    col(OutboxRow.not_before) <= now,
                )
                .order_by(col(OutboxRow.not_before), col(OutboxRow.id))
                .limit(_SLICE)
            )
            if quiet_now:
                stmt = stmt.where(col(OutboxRow.marketing) == False)  # noqa: E712 - SQL
            if after is not None:
                stmt = stmt.where(
                    sa.tuple_(col(OutboxRow.not_before), col(OutboxRow.id)) > sa.tuple_(*after)
                )
            candidates = s.execute(stmt).all()
            for row_id, marketing, not_before, next_attempt_at, key, cid, gid in candidates:
                after = (not_before, row_id or 0)
                if as_utc(next_attempt_at) > now:
                    continue
                if marketing and now - self._after_quiet(as_utc(not_before)) > self._settings.grace:
                    # Yesterday's lunch deal (held by an outage, not by quiet hours) is noise,
                    # not a perk: never sent, kept as a record.
                    s.execute(
                        sa.update(OutboxRow)
                        .where(col(OutboxRow.id) == row_id)
                        .values(status="failed", last_error=EXPIRED)
                    )
                    expired.append((row_id or 0, key, cid, gid))
                    continue
                return row_id
            if len(candidates) < _SLICE:
                return None

    def _take_slot(self, s: Session, pacing: OutboxPacing, call: datetime) -> None:
        """Advance the account's pacing row past ``call``; compare-and-set on ``calls``."""
        pacer = self._pacers.get(pacing.account, self._pacer)
        slot, due = pacer.after_call(pacing.slot_at, call, self._rng.random())
        today = call.astimezone(SHANGHAI).date()
        day_calls = pacing.day_calls + 1 if pacing.day == today else 1
        took = s.execute(
            sa.update(OutboxPacing)
            .where(
                col(OutboxPacing.account) == pacing.account,
                col(OutboxPacing.calls) == pacing.calls,
            )
            .values(
                slot_at=slot,
                due_at=due,
                last_call_at=call,
                calls=pacing.calls + 1,
                day=today,
                day_calls=day_calls,
            )
            .returning(col(OutboxPacing.account))
        ).first()
        if took is None:
            raise _LostRace

    async def _deliver_one(self, gateway: ChatGateway, row: OutboxRow) -> OutboxRecord:
        action = _action(row)
        log = self._log(row.key, row.account, row.campaign_id, row.group_id)
        try:
            await gateway.perform(action)
        except DeliveryUnknown as exc:
            log.warning("outbox: delivery unknown ({}); marked uncertain, not resent", _error(exc))
            return await self._off_loop(self._finish, row.id, "uncertain", last_error=_error(exc))
        except GatewayError as exc:
            return await self._off_loop(self._failed_attempt, row, exc, log)
        except Undeliverable as exc:  # permanent: no retry can help, and nothing was sent
            log.error("outbox: cannot be delivered: {}; marked failed", _error(exc))
            return await self._off_loop(self._finish, row.id, "failed", last_error=_error(exc))
        except Exception as exc:
            # Not a known transient failure: the platform may or may not have acted.
            log.opt(exception=exc).error("outbox: unexpected gateway error; marked uncertain")
            return await self._off_loop(self._finish, row.id, "uncertain", last_error=_error(exc))
        # BaseException (crash, cancellation) leaves the row `sending` for recover().
        record = await self._off_loop(self._finish, row.id, "sent", sent_at=self._clock.now())
        log.info("outbox: sent {} to {} {!r}", row.action, row.conversation, preview(row.text))
        return record

    def _failed_attempt(self, row: OutboxRow, exc: GatewayError, log: Any) -> OutboxRecord:
        if row.attempts >= self._settings.max_attempts:
            log.error("outbox: giving up after {} attempts: {}", row.attempts, _error(exc))
            return self._finish(row.id, "failed", last_error=_error(exc))
        delay = min(self._settings.backoff * 2 ** (row.attempts - 1), self._settings.max_backoff)
        retry_at = self._clock.now() + delay
        log.warning(
            "outbox: attempt {} failed ({}); retry at {}",
            row.attempts,
            _error(exc),
            retry_at.isoformat(),
        )
        return self._finish(row.id, "pending", last_error=_error(exc), next_attempt_at=retry_at)

    def _finish(self, row_id: int | None, status: OutboxStatus, **values: Any) -> OutboxRecord:
        with self._sessions() as s, s.begin():
            row = s.get(OutboxRow, row_id)
            assert row is not None
            row.status = status
            for k, v in values.items():
                setattr(row, k, v)
            s.flush()
            return _record(row)

    # -- pacing and quiet hours ------------------------------------------------------------

    def _after_quiet(self, when: datetime) -> datetime:
        """``when``, or the end of the quiet hours it falls in."""
        local = when.astimezone(SHANGHAI)
        if not self._quiet.contains(local.time()):
            return when
        end = datetime.combine(local.date(), self._quiet.end, tzinfo=SHANGHAI)
        if end <= local:
            end += timedelta(days=1)
        return end

    # -- restart and audit -----------------------------------------------------------------

    def in_hand(self, accounts: Collection[str]) -> bool:
        """Whether any of ``accounts`` has a send being made (a row ``sending``): a lease on
        them is let go only once none is (bot.leases)."""
        if not accounts:
            return False
        with self._sessions() as s:
            stmt = (
                sa.select(col(OutboxRow.id))
                .where(_status_is("sending"), _ATTENTION)
                .where(col(OutboxRow.account).in_(sorted(accounts)))
                .limit(1)
            )
            return s.execute(stmt).first() is not None

    def recover(self, accounts: Collection[str] | None = None) -> list[str]:
        """At start-up: rows a crash left ``sending`` become ``uncertain``; returns their keys.

        With ``accounts``, only theirs: on PostgreSQL a process taking over an account's lease
        recovers that account alone (other processes' sends in hand are theirs).
        """
        with self._sessions() as s, s.begin():
            stmt = select(OutboxRow).where(_status_is("sending"), _ATTENTION)
            if accounts is not None:
                stmt = stmt.where(col(OutboxRow.account).in_(sorted(accounts)))
            rows = s.exec(stmt).all()
            for row in rows:
                row.status = "uncertain"
                row.last_error = "interrupted while sending; not resent automatically"
                self._log(row.key, row.account, row.campaign_id, row.group_id).warning(
                    "outbox: {} to {} may or may not have gone out; marked uncertain",
                    row.action,
                    row.conversation,
                )
            return [row.key for row in rows]

    def prune(
        self, before: datetime, archive: Path | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        """Delete ``sent`` rows sent before ``before``; with ``archive``, append them there first.

        The archive is JSON lines (every column; gzip when the name ends in ``.gz``), written and
        flushed to disk batch by batch before that batch is deleted, so an interrupted prune
        loses nothing (a rerun may archive a row twice; its ``key`` tells). Rows go in batches
        of a few thousand, each its own short transaction, walking ``ix_outbox_sent_at``.
        Pending, failed and uncertain rows are never pruned. A pruned row's idempotency key is
        forgotten: keep the retention well beyond anything the scheduler could re-enqueue.
        """
        before = aware(before)
        window = (_SENT, col(OutboxRow.sent_at) < before)
        with self._sessions() as s:
            count, oldest, newest = s.execute(
                sa.select(
                    sa.func.count(), sa.func.min(OutboxRow.sent_at), sa.func.max(OutboxRow.sent_at)
                ).where(*window)
            ).one()
        report = PruneReport(
            rows=int(count),
            before=before,
            oldest=_local(oldest),
            newest=_local(newest),
            archive=archive,
            dry_run=dry_run,
        )
        if dry_run or not count:
            return report
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        sink = _open_archive(archive) if archive is not None else None
        try:
            while True:
                with self._sessions() as s, s.begin():
                    rows = s.execute(
                        sa.select(table)
                        .where(*window)
                        .order_by(col(OutboxRow.sent_at), col(OutboxRow.id))
                        .limit(_PRUNE_BATCH)
                    ).all()
                    if not rows:
                        break
                    if sink is not None:
                        for r in rows:
                            sink.write(json.dumps(dict(r._mapping), default=_jsonable) + "\n")
                        sink.flush()
                    s.execute(sa.delete(table).where(table.c.id.in_([r.id for r in rows])))
        finally:
            if sink is not None:
                sink.close()
        logger.bind(rows=count, before=before.isoformat(), archive=str(archive or "")).info(
            "outbox: pruned sent rows past the retention"
        )
        return report

    def requeue(self, key: str) -> bool:
        """Ops decision: send an ``uncertain`` or ``failed`` row again. True if requeued."""
        now = self._clock.now()
        with self._sessions() as s, s.begin():
            result = s.execute(
                sa.update(OutboxRow)
                .where(
                    col(OutboxRow.key) == key, col(OutboxRow.status).in_(("uncertain", "failed"))
                )
                .values(status="pending", attempts=0, next_attempt_at=now)
                .returning(col(OutboxRow.id))
            )
            return result.first() is not None

    def audit(self, since: datetime | None = None) -> list[OutboxRecord]:
        """Sent rows (what, to whom, when, from which campaign), in send order."""
        with self._sessions() as s:
            stmt = select(OutboxRow).where(_SENT)
            if since is not None:
                stmt = stmt.where(col(OutboxRow.sent_at) >= aware(since))
            stmt = stmt.order_by(col(OutboxRow.sent_at), col(OutboxRow.id))
            return [_record(row) for row in s.exec(stmt)]

    def with_status(self, status: OutboxStatus, limit: int = 200) -> list[OutboxRecord]:
        """Rows in one status, oldest first (for ops: what is pending, failed or uncertain).

        Live rows come by ``not_before``; sent rows by ``sent_at`` (the audit log's index).
        """
        with self._sessions() as s:
            if status == "sent":
                stmt = select(OutboxRow).where(_SENT).order_by(col(OutboxRow.sent_at))
            elif status == "pending":
                stmt = select(OutboxRow).where(_PENDING).order_by(col(OutboxRow.not_before))
            else:
                stmt = (
                    select(OutboxRow)
                    .where(_status_is(status), _ATTENTION)
                    .order_by(col(OutboxRow.status), col(OutboxRow.not_before))
                )
            stmt = stmt.order_by(col(OutboxRow.id)).limit(limit)
            return [_record(row) for row in s.exec(stmt)]

    def get(self, key: str) -> OutboxRecord | None:
        """The row with ``key``, whatever its status."""
        with self._sessions() as s:
            row = s.exec(select(OutboxRow).where(OutboxRow.key == key)).first()
            return _record(row) if row is not None else None

    def expired_rows(self, since: datetime | None = None) -> list[ExpiredSend]:
        """Marketing sends expired past the grace (meant for ``since`` or later), oldest first.

        Read through ``ix_outbox_attention``; expired rows are few next to the audit log.
        """
        with self._sessions() as s:
            stmt = sa.select(
                col(OutboxRow.key),
                col(OutboxRow.campaign_id),
                col(OutboxRow.group_id),
                col(OutboxRow.account),
                col(OutboxRow.not_before),
            ).where(_status_is("failed"), _ATTENTION, col(OutboxRow.last_error) == EXPIRED)
            if since is not None:
                stmt = stmt.where(col(OutboxRow.not_before) >= aware(since))
            stmt = stmt.order_by(col(OutboxRow.not_before), col(OutboxRow.id))
            return [
                ExpiredSend(key, campaign, group, account, _local(not_before))
                for key, campaign, group, account, not_before in s.execute(stmt)
            ]

    def pending_count(self) -> int:
        """How many sends wait to go out (counted in a pending index; cheap enough for probes)."""
        with self._sessions() as s:
            return int(s.exec(select(sa.func.count()).where(_PENDING)).one())

    def status_counts(self) -> dict[str, int]:
        """How many rows are in each status (statuses with none are left out).

        Index-only counts, each in the partial index of its statuses.
        """
        with self._sessions() as s:
            held = select(OutboxRow.status, sa.func.count()).where(_ATTENTION)
            counts = {status: int(n) for status, n in s.exec(held.group_by(col(OutboxRow.status)))}
            for status, where in (("pending", _PENDING), ("sent", _SENT)):
                if n := int(s.exec(select(sa.func.count()).where(where)).one()):
                    counts[status] = n
        return counts

    @staticmethod
    def _log(key: str, account: str, campaign: str | None, group: str | None) -> Any:
        return logger.bind(outbox_key=key, account=account, campaign=campaign, group=group)


_PACING_STATE = (
    col(OutboxPacing.account),
    col(OutboxPacing.due_at),
    col(OutboxPacing.last_call_at),
    col(OutboxPacing.day),
    col(OutboxPacing.day_calls),
)


def account_gateway(gateway: ChatGateway, account: str) -> ChatGateway:
    """The gateway that sends as ``account``: a multi-account gateway's ``via(account)``; a
    single-account one sends everything itself."""
    via = getattr(gateway, "via", None)
    return via(account) if callable(via) else gateway


def _earliest_pending(*, marketing: bool) -> Any:
    """Correlated with the pacing row: its account's earliest pending ``next_attempt_at``.

    ``ORDER BY … LIMIT 1`` rather than ``min()``: only ``ix_outbox_pending_due`` yields that
    order, so PostgreSQL reads one entry of it, where ``min()`` on statistics that saw nothing
    pending let it aggregate every pending row of the account through the claim index.
    """
    return (
        sa.select(col(OutboxRow.next_attempt_at))
        .where(
            _PENDING,
            col(OutboxRow.account) == col(OutboxPacing.account),
            col(OutboxRow.marketing) == marketing,
        )
        .order_by(col(OutboxRow.next_attempt_at))
        .limit(1)
        .scalar_subquery()
    )


def _kind(action: Action) -> str:
    return {Say: "say", Invite: "invite", Remove: "remove"}[type(action)]


_ROW_COLUMNS = (
    "key",
    "account",
    "action",
    "campaign_id",
    "group_id",
    "reason",
    "marketing",
    "priority",
    "not_before",
    "next_attempt_at",
    "status",
    "attempts",
    "created_at",
    "conversation",
    "text",
    "mentions",
    "room",
    "contact",
)


def _row_values(item: OutboxItem, now: datetime, fallback: str | None) -> tuple[Any, ...]:
    """The outbox row of ``item``, as a tuple in :data:`_ROW_COLUMNS` order."""
    # Stored as UTC: an aware instant needs no conversion here (naive reads as Shanghai).
    not_before = item.not_before if item.not_before.tzinfo is not None else aware(item.not_before)
    action = item.action
    room = contact = text = None
    # A tuple, stored as the same JSON list: hashable, so one conversion serves equal ones.
    mentions: tuple[str, ...] = ()
    if isinstance(action, Say):
        conversation, text, mentions = action.to, action.text, tuple(action.mentions)
    else:
        assert isinstance(action, Invite | Remove)
        conversation, room, contact = room_conv(action.room), action.room, action.contact
    return (
        item.key,
        item.account,
        _kind(action),
        item.campaign_id,
        item.group_id or _room_of(action),
        item.reason or reason_for(item.key, item.campaign_id, fallback),
        item.marketing,
        _priority(item),
        not_before,
        not_before,
        "pending",
        0,
        now,
        conversation,
        text,
        mentions,
        room,
        contact,
    )


def _priority(item: OutboxItem) -> int:
    if item.priority is None:
        return PRIORITY_PUSH if item.marketing else PRIORITY_CONVERSATION
    if item.priority not in _PRIORITIES:
        raise ValueError(f"outbox item {item.key!r}: priority must be one of {_PRIORITIES}")
    return item.priority


def _room_of(action: Action) -> str | None:
    """The group an action happens in (audit filters by group), None for a private message."""
    if isinstance(action, Say):
        kind, _, ident = action.to.partition(":")
        return ident if kind == "room" else None
    return action.room


def _action(row: OutboxRow) -> Action:
    if row.action == "say":
        return Say(to=row.conversation, text=row.text or "", mentions=tuple(row.mentions))
    if row.action == "invite":
        return Invite(room=row.room or "", contact=row.contact or "")
    return Remove(room=row.room or "", contact=row.contact or "")


def _record(row: OutboxRow) -> OutboxRecord:
    return OutboxRecord(
        key=row.key,
        action=_action(row),
        account=row.account,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        not_before=_local(row.not_before),
        sent_at=_local(row.sent_at),
        campaign_id=row.campaign_id,
        group_id=row.group_id,
        marketing=row.marketing,
        last_error=row.last_error,
        reason=row.reason,
    )


def _open_archive(path: Path) -> Any:
    """Append-only text sink; ``.gz`` gets a gzip member per prune run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "at", encoding="utf-8")
    return path.open("a", encoding="utf-8")


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _local(dt: datetime | None) -> Any:
    return None if dt is None else as_utc(dt).astimezone(SHANGHAI)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
