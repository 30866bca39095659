"""Passes each domain event through an ordered list of handlers (DESIGN.md, core loop 2).

The aiogram / python-telegram-bot model: each handler has a filter (``accepts``) and an
action (``handle``); the first handler that consumes an event stops it there, except for
handlers marked ``always`` (bookkeeping), which see every event they accept. The order is
the composition root's list (bot/app.py); a new feature is a new handler in that list.

A message that is not text (an image, a contact or link card: ``MessageReceived.kind``) reaches
only handlers marked ``non_text = True`` (moderation): its text is a URL or nothing, never a
command or a question (a link card whose URL read "我要进群" used to start the join flow).

Faults never stop the loop and never lose an event silently:

* a *permanent* fault in a handler is logged with its reason (personal data masked) and ends
  that event (only ``always`` handlers still see it); the next event is handled as usual;
* a *transient* fault (database locked or disconnected, a timeout) is retried with backoff
  where it happened (:meth:`HandlerContext.db`, :mod:`bot.retry`); one that outlasts the
  retries *defers* the event: it waits, with the events that come after it (order matters: a
  leave after a join), and is resumed at the handler that failed, on the next event or
  :meth:`Dispatcher.retry_deferred`, with a growing pause in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from bot.events import Event, LocationShared, MemberJoined, MemberLeft, MessageReceived
from bot.handlers.base import Handler, HandlerContext
from bot.outbox import SEND_REASON
from bot.privacy import mask
from bot.retry import fault_reason, is_transient

__all__ = ["Dispatcher"]

_FIRST_PAUSE = timedelta(seconds=1)
_LONGEST_PAUSE = timedelta(seconds=30)


@dataclass
class _InFlight:
    """An event on its way through the handlers: where to resume, and whether it was taken."""

    event: Event
    next_handler: int = 0
    consumed: bool = False


class Dispatcher:
    """Runs events through ``handlers`` in order, one event at a time, in arrival order."""

    def __init__(
        self,
        handlers: Sequence[Handler],
        ctx: HandlerContext,
        *,
        backlog_limit: int = 10_000,
    ) -> None:
        names = [h.name for h in handlers]
        if len(set(names)) != len(names):
            raise ValueError(f"handler names must be unique: {names}")
        self._handlers = tuple(handlers)
        self._ctx = ctx
        self._limit = backlog_limit
        self._backlog: deque[_InFlight] = deque()
        self._lock = asyncio.Lock()
        self._pause = _FIRST_PAUSE
        self._retry_at: datetime | None = None

    @property
    def handlers(self) -> tuple[Handler, ...]:
        """The handlers, in the order events meet them."""
        return self._handlers

    @property
    def ctx(self) -> HandlerContext:
        """The context handed to every handler."""
        return self._ctx

    @property
    def deferred(self) -> int:
        """Events waiting because a transient fault outlasted the retries."""
        return len(self._backlog)

    def next_retry(self) -> datetime | None:
        """When deferred events are tried again (None when there are none)."""
        return self._retry_at if self._backlog else None

    async def dispatch(self, event: Event) -> None:
        """Handle ``event`` after any deferred ones; never raises for a handler's fault."""
        if _from_bot(event, self._ctx.bot_id):  # the bot never answers itself
            return
        async with self._lock:
            if len(self._backlog) >= self._limit:
                _log(event).error(
                    "event dropped: {} events already wait for the database", len(self._backlog)
                )
                return
            self._backlog.append(_InFlight(event))
            if len(self._backlog) > 1 and not self._due():
                return  # waits behind the deferred ones, in order
            await self._drain()

    async def retry_deferred(self) -> None:
        """Resume deferred events once their pause is over (the bot's time loop calls this)."""
        if not self._backlog or not self._due():
            return
        async with self._lock:
            await self._drain()

    def _due(self) -> bool:
        return self._retry_at is None or self._ctx.clock.now() >= self._retry_at

    async def _drain(self) -> None:
        while self._backlog:
            if not await self._run(self._backlog[0]):
                self._retry_at = self._ctx.clock.now() + self._pause
                self._pause = min(self._pause * 2, _LONGEST_PAUSE)
                return
            self._backlog.popleft()
            self._retry_at, self._pause = None, _FIRST_PAUSE

    async def _run(self, flight: _InFlight) -> bool:
        """Run the event from its next handler on; False when it must wait (transient fault)."""
        event, ctx = flight.event, self._ctx
        text = not isinstance(event, MessageReceived) or event.kind == "text"
        for i in range(flight.next_handler, len(self._handlers)):
            handler = self._handlers[i]
            flight.next_handler = i
            if flight.consumed and not handler.always:
                continue
            if not text and not getattr(handler, "non_text", False):
                continue
            try:
                if not handler.accepts(event, ctx):
                    continue
                reason = SEND_REASON.set(handler.name)  # the audit reason of what it queues
                try:
                    took = await handler.handle(event, ctx)
                finally:
                    SEND_REASON.reset(reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # safe: logged with its reason, the event kept or ended
                if is_transient(exc):
                    _log(event, handler).warning(
                        "event deferred, {} waiting: {}", len(self._backlog), fault_reason(exc)
                    )
                    return False
                _log(event, handler).error("event rejected: {}", fault_reason(exc))
                flight.consumed = True
                continue
            if took and not handler.always:
                flight.consumed = True
        flight.next_handler = len(self._handlers)
        return True


def _from_bot(event: Event, bot_id: str) -> bool:
    return isinstance(event, MessageReceived | LocationShared) and event.sender.id == bot_id


def _log(event: Event, handler: Handler | None = None):  # noqa: ANN202 - loguru's bound logger
    fields: dict[str, str] = {"event": type(event).__name__}
    if handler is not None:
        fields["handler"] = handler.name
    if isinstance(event, MessageReceived | LocationShared):
        fields["contact"] = mask(event.sender.id)
    if isinstance(event, MemberJoined | MemberLeft) or getattr(event, "room_id", None):
        fields["room"] = str(event.room_id)
    return logger.bind(**fields)
