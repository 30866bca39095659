"""How command handlers read a member's message: @-mentions removed, spaces trimmed."""

from __future__ import annotations

import re

from bot.events import MessageReceived
from bot.handlers.base import HandlerContext

_MENTION = re.compile(r"@\S+[\s\u2005]*")


def command_text(event: MessageReceived) -> str:
    """The message without its @-mentions (``@群福助手 我的邀请`` -> ``我的邀请``)."""
    return _MENTION.sub("", event.text).strip()


def addressed_to_bot(event: MessageReceived, ctx: HandlerContext) -> bool:
    """A private message, or a group message that @-mentions the bot."""
    return event.room_id is None or ctx.bot_id in event.mentions


async def answer(event: MessageReceived, ctx: HandlerContext, text: str) -> None:
    """Answer where the member asked: in the group @-mentioning them, or privately."""
    from bot.handlers.base import event_key

    if event.room_id is None:
        await ctx.reply(event.sender.id, event.at, text, event_key(event))
    else:
        await ctx.say_in_room(event.room_id, event.at, text, event_key(event), (event.sender.id,))
