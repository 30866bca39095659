"""A lottery's entry keyword, sent in a group the lottery reaches (or after @-ing the bot).

The filter is in memory (the keywords of the live lottery campaigns); the entry is one
transaction in a worker thread. A keyword with no open round is not consumed: it is ordinary
text for the handlers after this one.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext
from bot.handlers.text import answer, command_text
from bot.lottery import LotteryService
from scheduler.clock import SHANGHAI

__all__ = ["LotteryEntryHandler", "keyword_in"]

# What people wrap a keyword in: "我要抽奖！", "参加抽奖~" still mean the keyword. Anything
# more ("抽奖什么时候开?") is a question for the FAQ, not an entry.
_AROUND = re.compile(r"^(?:我要|我想|我也要|我也|我来|要|想|参加|报名)?(.+?)[!！。.~～]*$")


def keyword_in(text: str, keywords: Collection[str]) -> str | None:
    """The live keyword ``text`` is, once a polite prefix and closing marks are set aside."""
    if text in keywords:
        return text
    m = _AROUND.match(text)
    if m is not None and m.group(1) in keywords:
        return m.group(1)
    return None


class LotteryEntryHandler:
    """Enters a member in a lottery once, and says so."""

    name = "command:lottery"
    always = False

    def __init__(self, lottery: LotteryService) -> None:
        self._lottery = lottery

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Group text that is exactly a live lottery keyword."""
        return (
            isinstance(event, MessageReceived)
            and event.room_id is not None
            and keyword_in(command_text(event), self._lottery.keywords()) is not None
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Enter the member and answer once per message; not consumed without an open round."""
        assert isinstance(event, MessageReceived) and event.room_id is not None
        keyword = keyword_in(command_text(event), self._lottery.keywords())
        if keyword is None:  # the campaigns were reloaded since accepts()
            return False
        entry = await ctx.db(self._lottery.enter, event.room_id, event.sender, keyword, event.at)
        if entry is None:
            return False
        when = entry.draw_at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")
        if entry.outcome == "entered":
            text = f"报名成功！您已参加【{entry.campaign_name}】，{when} 开奖，祝您好运！"
        elif entry.outcome == "already":
            text = f"您已参加本期【{entry.campaign_name}】，无需重复报名，{when} 开奖。"
        else:
            text = "您已退订营销消息，暂不能参加抽奖。如需参加，请先发送「订阅」。"
        await answer(event, ctx, text)
        return True
