"""What every handler shares: the :class:`Handler` protocol and the :class:`HandlerContext`.

A handler is a small plain class with its dependencies passed in. ``accepts`` is its filter: a
cheap look at the event and in-memory state (never the database) that says whether it runs.
``handle`` does the work and returns True when it *consumed* the event, which stops the event
there; a handler whose ``always`` is True runs even after an earlier one consumed the event
(bookkeeping such as memberships) and never consumes itself.

Database work never runs on the event loop: a handler hands each transaction to
:meth:`HandlerContext.db`, which runs it in a worker thread and retries transient faults.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from bot.campaigns import CampaignPlanner
from bot.events import (
    Action,
    Event,
    Invite,
    LocationShared,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    Remove,
    Say,
    contact_conv,
    room_conv,
)
from bot.opsdata.bundle import OpsData
from bot.outbox import Outbox, OutboxItem
from bot.retry import DEFAULT_POLICY, RetryPolicy
from scheduler.clock import Clock

__all__ = ["Handler", "HandlerContext", "event_key"]

T = TypeVar("T")


@runtime_checkable
class Handler(Protocol):
    """One concern of the bot, behind a filter (see the module docstring)."""

    name: str
    """Short and stable: it names the handler in logs."""
    always: bool
    """Runs even when an earlier handler consumed the event; then it must never consume."""

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Whether this handler runs for ``event``: in-memory checks only, no I/O."""
        ...

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Act on ``event``; True when it is consumed (later handlers do not see it).

        Raising is allowed: the dispatcher logs a permanent fault with its reason and retries
        or defers a transient one, so each transaction given to ``ctx.db`` must be safe to run
        again after a transient fault (one transaction, or an idempotent one).
        """
        ...


@dataclass
class HandlerContext:
    """Services every handler may use: ops data, clock, outbox, and off-loop database calls."""

    planner: Callable[[], CampaignPlanner]
    outbox: Outbox
    clock: Clock
    bot_id: str
    retry: RetryPolicy = DEFAULT_POLICY
    _calls: int = field(default=0, repr=False)

    @property
    def ops(self) -> OpsData:
        """The live ops data (a reload swaps it whole; a handler reads it once per event)."""
        return self.planner().ops

    async def db(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread, retrying it on transient faults.

        ``fn`` should be one transaction (a repository call): a transient fault rolls it back
        whole, so running it again cannot do its work twice.
        """
        self._calls += 1
        name = getattr(fn, "__qualname__", type(fn).__name__)
        return await self.retry.call_async(lambda: asyncio.to_thread(fn, *args), what=name)

    @property
    def db_calls(self) -> int:
        """Database calls handed off so far (tests and benchmarks count them per event)."""
        return self._calls

    async def send(
        self, actions: Sequence[tuple[Action, str]], at: datetime, *, reason: str | None = None
    ) -> None:
        """Queue the bot's own answers (never marketing) in one outbox transaction.

        Each action comes with its idempotency key, so an event delivered twice, or a
        handler run again after a fault, queues each answer once. ``reason`` is the audit log's
        (default: the running handler's name, set by the dispatcher).
        """
        items = [
            OutboxItem(
                key=key,
                action=action,
                not_before=at,
                marketing=False,
                account=self.bot_id,
                reason=reason,
            )
            for action, key in actions
        ]
        await self.db(self.outbox.enqueue, items)

    async def reply(self, contact_id: str, at: datetime, text: str, key: str) -> None:
        """A private message to ``contact_id``."""
        await self.send([(Say(contact_conv(contact_id), text), key)], at)

    async def say_in_room(
        self,
        room_id: str,
        at: datetime,
        text: str,
        key: str,
        mentions: tuple[str, ...] = (),
        *,
        reason: str | None = None,
    ) -> None:
        """A message in a group, @-mentioning ``mentions``."""
        await self.send([(Say(room_conv(room_id), text, mentions), key)], at, reason=reason)

    async def invite(self, room_id: str, contact_id: str, at: datetime, key: str) -> None:
        """Invite ``contact_id`` into ``room_id``."""
        await self.send([(Invite(room_id, contact_id), key)], at)

    async def remove(
        self, room_id: str, contact_id: str, at: datetime, key: str, *, reason: str | None = None
    ) -> None:
        """Remove ``contact_id`` from ``room_id`` (through the outbox, like every action)."""
        await self.send([(Remove(room_id, contact_id), key)], at, reason=reason)


def event_key(event: Event) -> str:
    """The idempotency key of the answers to ``event``: the platform's message id when there
    is one, else a digest of what the event says (the same event delivered twice, same key)."""
    if isinstance(event, MessageReceived):
        if event.message_id:
            return f"msg:{event.message_id}"
        raw = f"{event.sender.id}|{event.room_id}|{event.at.isoformat()}|{event.text}"
        return f"msg:{hashlib.sha1(raw.encode()).hexdigest()[:16]}"
    if isinstance(event, LocationShared):
        return f"loc:{event.sender.id}:{event.at.isoformat()}"
    if isinstance(event, MemberJoined):
        ids = ",".join(p.id for p in event.members)
        return f"join:{event.room_id}:{event.at.isoformat()}:{ids}"
    if isinstance(event, MemberLeft):
        return f"left:{event.room_id}:{event.at.isoformat()}:{','.join(event.member_ids)}"
    raise TypeError(f"not an event: {type(event).__name__}")
