"""Joins and leaves: the membership ledger, live member counts and the waitlist.

Bookkeeping that every later handler may rely on, so it runs for every join and leave
(``always``) and never consumes the event.
"""

from __future__ import annotations

from loguru import logger

from bot.entry.joins import EntryJoins
from bot.entry.seats import MemberCounts
from bot.entry.waitlist import Waitlist
from bot.events import Event, MemberJoined, MemberLeft, Person
from bot.handlers.base import HandlerContext, event_key
from bot.retry import fault_reason, is_transient
from db.repositories import MembershipRepo

__all__ = ["MembershipHandler"]


class MembershipHandler:
    """Records joins and leaves; tells the waitlist when a full group gets room."""

    name = "membership"
    always = True

    def __init__(
        self,
        memberships: MembershipRepo,
        counts: MemberCounts,
        *,
        joins: EntryJoins | None = None,
        waitlist: Waitlist | None = None,
    ) -> None:
        self._memberships = memberships
        self._counts = counts
        self._joins = joins
        self._waitlist = waitlist
        # People of an event already recorded, while the event is unfinished: an event run
        # again after a fault outlasted the retries skips them (a leave of someone seeded from
        # the directory is not idempotent: it lowers the count each time).
        self._done: dict[str, set[str]] = {}

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Joins and leaves in any room (one that is not a welfare group is logged)."""
        return isinstance(event, MemberJoined | MemberLeft)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Record the event; never consumes it."""
        key = event_key(event)
        done = self._done.setdefault(key, set())
        try:
            if isinstance(event, MemberJoined):
                await self._joined(event, ctx, done)
            elif isinstance(event, MemberLeft):
                await self._left(event, ctx, done)
        except Exception as exc:
            if not is_transient(exc):  # a permanent fault ends the event: nothing to resume
                del self._done[key]
            raise
        del self._done[key]
        return False

    async def _joined(self, event: MemberJoined, ctx: HandlerContext, done: set[str]) -> None:
        if event.room_id not in ctx.ops.groups:
            logger.bind(room=event.room_id).warning("join in a room that is not a welfare group")
            return
        try:
            for person in event.members:
                if person.id != ctx.bot_id and person.id not in done:
                    await self._join_one(event, person, ctx)
                    done.add(person.id)
        finally:  # joins already written before a failure still count
            await self._refresh(event.room_id, ctx)

    async def _join_one(self, event: MemberJoined, person: Person, ctx: HandlerContext) -> None:
        joins = self._joins
        matched = await ctx.db(joins.match, event.room_id, person.id, event.at) if joins else None
        membership = await ctx.db(
            self._memberships.join,
            event.room_id,
            person,
            event.at,
            event.inviter_id,
            matched.channel if matched else None,
        )
        if matched is not None and joins is not None:
            await ctx.db(joins.link, matched, membership.id)

    async def _left(self, event: MemberLeft, ctx: HandlerContext, done: set[str]) -> None:
        group = ctx.ops.groups.get(event.room_id)
        was_full = group is not None and self._counts.get(group.id, group.members) >= group.capacity
        try:
            for member_id in event.member_ids:
                if member_id not in done:
                    await ctx.db(self._memberships.leave, event.room_id, member_id, event.at)
                    done.add(member_id)
        finally:  # leaves already written before a failure still count
            await self._refresh(event.room_id, ctx)
        # Only a group crossing from full to room can help anyone waiting: the waitlist is
        # looked at only on that crossing.
        if was_full and group is not None and self._waitlist is not None:
            after = self._counts.get(group.id, group.members)
            if after < group.capacity:
                await ctx.db(self._waitlist.opened, [group], {group.id: after}, event.at)

    async def _refresh(self, room_id: str, ctx: HandlerContext) -> None:
        try:
            await ctx.db(self._counts.refresh, [room_id])
        except Exception as exc:  # safe: the next join, leave or reload re-reads the count
            logger.bind(room=room_id).error("member count not refreshed: {}", fault_reason(exc))
