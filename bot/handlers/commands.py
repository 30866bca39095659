"""Member commands (DESIGN.md "Chat commands"): short words a member sends the bot.

Each command is its own handler, so the composition root lists them in order. ``我要进群`` (and
any private message asking to join a group) starts the entry flow here. Slots kept for the
handlers other work adds next to this one, in this order (bot/app.py ``_handlers``):
``我的邀请`` and ``邀请排行`` (referrals), ``退订`` / ``订阅`` (marketing opt-out, before any
handler that could send marketing), a lottery's entry keyword.
"""

from __future__ import annotations

from bot.entry.joins import looks_like_invite_request
from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key

__all__ = ["JOIN_WORDS", "JoinRequestHandler"]

JOIN_WORDS = ("进群", "入群", "加群", "福利群")
"""A private message with one of these asks to join a group (``我要进群``, ``怎么加群``...)."""

_HOW_TO_JOIN = "欢迎！请点击「+」→「位置」发送您的位置，我为您推荐附近有空位的福利群。"


class JoinRequestHandler:
    """``我要进群`` in the private chat: explain how to share a location."""

    name = "command:join"
    always = False

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
        await ctx.reply(event.sender.id, event.at, _HOW_TO_JOIN, event_key(event))
        return True
