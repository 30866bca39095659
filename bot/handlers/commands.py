"""Member commands (DESIGN.md "Chat commands"): short words a member sends the bot.

Each command is its own handler, so the composition root lists them in order. ``我要进群`` (and
any private message asking to join a group) starts the entry flow here. Slots kept for the
handlers other work adds next to this one, in this order (bot/app.py ``_handlers``):
``我的邀请`` and ``邀请排行`` (referrals), ``退订`` / ``订阅`` (marketing opt-out, before any
handler that could send marketing), a lottery's entry keyword.
"""

from __future__ import annotations

from bot.entry.joins import EntryJoins, looks_like_invite_request
from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key
from bot.replies import already_in
from db.entry_repositories import SeatsRepo

__all__ = ["JOIN_WORDS", "JoinRequestHandler"]

JOIN_WORDS = ("进群", "入群", "加群", "福利群")
"""A private message with one of these asks to join a group (``我要进群``, ``怎么加群``...)."""

_HOW_TO_JOIN = "欢迎！请点击「+」→「位置」发送您的位置，我为您推荐附近有空位的福利群。"
_HOW_TO_JOIN_ANOTHER = "如需加入附近其他福利群，请点击「+」→「位置」发送您的位置。"


class JoinRequestHandler:
    """``我要进群`` in the private chat: explain how to share a location, first telling a
    member which welfare groups they are already in (those are never offered again)."""

    name = "command:join"
    always = False

    def __init__(self, seats: SeatsRepo | None = None, joins: EntryJoins | None = None) -> None:
        self._seats = seats
        self._joins = joins

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Private text naming a join word, except an invite code (``进群 K7M2QX``), which is
        the entry flow's to answer."""
        if not isinstance(event, MessageReceived) or event.room_id is not None:
            return False
        text = event.text.strip()
        return any(w in text for w in JOIN_WORDS) and not looks_like_invite_request(text)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer with how to share a location; always consumes."""
        assert isinstance(event, MessageReceived)
        if self._joins is not None:  # the funnel's chat channel: a visit starts here
            await ctx.db(self._joins.chat_visit, event.sender.id, event.at)
        text = _HOW_TO_JOIN
        if self._seats is not None:
            mine = await ctx.db(self._seats.groups_of, event.sender.id)
            groups = ctx.ops.groups
            names = [groups[g].name for g in sorted(mine) if g in groups]
            if names:
                text = already_in(names) + _HOW_TO_JOIN_ANOTHER
        await ctx.reply(event.sender.id, event.at, text, event_key(event))
        return True
