"""Managers' private messages: ``#<n> text`` answers, ``#<n> 关闭`` resolves, ``工单`` lists.

Placed after the member commands and before the entry flow (bot/app.py ``_handlers``). Only
staff (managers in the directory, their backups, ``entry.ops_contacts``) are handled here; a
staff message that is none of the three gets a short help text. Work is in bot/tickets.py.
"""

from __future__ import annotations

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key
from bot.tickets import TicketDesk

__all__ = ["TicketReplyHandler"]


class TicketReplyHandler:
    """A customer manager answering, closing or listing tickets in the private chat."""

    name = "tickets"
    always = False

    def __init__(self, desk: TicketDesk) -> None:
        self._desk = desk

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Private text from staff (an in-memory lookup)."""
        return (
            isinstance(event, MessageReceived)
            and event.room_id is None
            and self._desk.is_staff(event.sender.id)
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Relay, resolve, list or help; always consumes."""
        assert isinstance(event, MessageReceived)
        await ctx.db(
            self._desk.manager_message, event.sender.id, event.text, event.at, event_key(event)
        )
        return True
