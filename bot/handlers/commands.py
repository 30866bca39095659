"""Member commands (DESIGN.md "Chat commands"): short words a member sends the bot.

Each command is its own handler, so the composition root lists them in order. ``我要进群`` (and
any private message asking to join a group) starts the entry flow here. Slots kept for the
handlers other work adds next to this one, in this order (bot/app.py ``_handlers``):
``我的邀请`` and ``邀请排行`` (referrals), ``退订`` / ``订阅`` (marketing opt-out, before any
handler that could send marketing), a lottery's entry keyword.
"""

from __future__ import annotations

import re

from bot.entry.joins import EntryJoins, looks_like_invite_request
from bot.entry.seats import welfare_groups_of
from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key
from bot.handlers.text import answer, command_text
from bot.replies import already_in
from db.entry_repositories import SeatsRepo

__all__ = ["JOIN_WORDS", "JoinRequestHandler", "PrivateHelpHandler"]

JOIN_WORDS = ("进群", "入群", "加群", "福利群")
"""A private message with one of these asks to join a group (``我要进群``, ``怎么加群``...)."""

# In a group only the command itself counts (``@群福助手 我要进群``): a question that merely
# mentions joining ("怎么邀请朋友进群?") is the FAQ's.
_GROUP_JOIN = re.compile(r"^(我要|我想|想|要|怎么|如何)?(进|入|加)(群|福利群)[?？!！。~～]*$")

_HOW_TO_JOIN = "欢迎！请点击「+」→「位置」发送您的位置，我为您推荐附近有空位的福利群。"
_HOW_TO_JOIN_ANOTHER = "如需加入附近其他福利群，请点击「+」→「位置」发送您的位置。"
_IN_THIS_GROUP = (
    "您已在本群「{name}」中，无需重复加入。如需加入附近其他福利群，请私聊我并发送您的位置。"
)


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
        the entry flow's to answer; in a group, ``我要进群`` @-ing the bot."""
        if not isinstance(event, MessageReceived):
            return False
        if event.room_id is not None:
            return ctx.bot_id in event.mentions and bool(_GROUP_JOIN.match(command_text(event)))
        text = event.text.strip()
        if not any(w in text for w in JOIN_WORDS) or looks_like_invite_request(text):
            return False
        # A manager's "#12 您可以发送我要进群" is a ticket answer, for the ticket handler.
        if text[:1] in ("#", "＃"):
            return False
        return event.sender.id not in ctx.ops.manager_contacts

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer with how to share a location; always consumes."""
        assert isinstance(event, MessageReceived)
        if event.room_id is not None:  # asked in a group: they are in this one already
            group = ctx.ops.groups.get(event.room_id)
            name = group.name if group is not None else event.room_id
            await answer(event, ctx, _IN_THIS_GROUP.format(name=name))
            return True
        if self._joins is not None:  # the funnel's chat channel: a visit starts here
            await ctx.db(self._joins.chat_visit, event.sender.id, event.at)
        text = _HOW_TO_JOIN
        if self._seats is not None:
            mine = await ctx.db(welfare_groups_of, self._seats, ctx.ops.groups, event.sender.id)
            if mine:
                text = already_in(g.name for g in mine) + _HOW_TO_JOIN_ANOTHER
        await ctx.reply(event.sender.id, event.at, text, event_key(event))
        return True


# Acknowledgements need no answer: a help text after "谢谢" reads as a bot not listening.
_THANKS = re.compile(
    r"^(谢谢|多谢|感谢|好的?|好滴|嗯+|哦+|ok|收到|明白了?|知道了|👍|🙏)[啦了呀哈！!。~～]*$",
    re.IGNORECASE,
)
_MEMBER_HELP = (
    "您好，我是群福助手。您可以发送：\n"
    "· 我要进群：推荐附近有空位的福利群（也可以直接发送位置）\n"
    "· 我的邀请：查看您的邀请码和邀请进度\n"
    "· 邀请排行：查看邀请排行榜\n"
    # Opting out stops @-mentions, private pushes and lottery entry (bot.optout), not the
    # group's own posts: say so, as the 退订 confirmation does.
    "· 退订：不再@您或私信推送活动，也不能参加抽奖（群里的活动消息照常可见）\n"
    "· 订阅：恢复@您、私信推送和抽奖\n"
    "其他问题请在您所在的福利群里@我，我答不了的会转给群里的客户经理。"
)
# One help text per person per window: the outbox key repeats within it, so the outbox keeps
# only the first (it is idempotent by key), however many messages the bot did not understand.
_HELP_WINDOW_S = 30 * 60


class PrivateHelpHandler:
    """A private text no other handler took: say what the bot can do (once per person per
    half-hour window of the clock), instead of leaving the person talking to silence."""

    name = "command:help"
    always = False

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Private text that is not a mere acknowledgement."""
        if not isinstance(event, MessageReceived) or event.room_id is not None:
            return False
        text = event.text.strip()
        return bool(text) and not _THANKS.match(text)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Send the help text; always consumes. (Managers never get here: the ticket handler
        answers every private text of theirs, with their own help.)"""
        assert isinstance(event, MessageReceived)
        person = event.sender.id
        window = int(event.at.timestamp()) // _HELP_WINDOW_S
        await ctx.reply(person, event.at, _MEMBER_HELP, f"help:{person}:{window}")
        return True
