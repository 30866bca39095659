"""``退订`` / ``订阅``: a member leaves or rejoins marketing (DESIGN.md "Chat commands").

It sits before every handler that could send marketing, privately or @-mentioning the bot in
a group, and is answered where it was asked. The choice and its time are recorded
(``optout_event``; ``qunfu optouts`` lists them).
"""

from __future__ import annotations

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext
from bot.handlers.text import addressed_to_bot, answer, command_text
from bot.optout import OPT_IN, OPT_OUT, MarketingOptOut

__all__ = ["OptOutHandler"]

_OUT = "已为您退订营销消息：之后不再@您或私信推送活动，也不能参加抽奖。发送「订阅」可随时恢复。"
_OUT_AGAIN = "您此前已退订营销消息，无需重复操作。发送「订阅」可随时恢复。"
_IN = "已为您恢复订阅，欢迎回来！之后的福利活动会及时通知您。发送「退订」可随时退订。"
_IN_AGAIN = "您当前已是订阅状态，福利活动会及时通知您。发送「退订」可随时退订。"


class OptOutHandler:
    """Records 退订 / 订阅 and confirms it."""

    name = "command:optout"
    always = False

    def __init__(self, optout: MarketingOptOut) -> None:
        self._optout = optout

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """The exact word, privately or @-mentioning the bot in a group."""
        return (
            isinstance(event, MessageReceived)
            and command_text(event) in (OPT_OUT, OPT_IN)
            and addressed_to_bot(event, ctx)
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Record the choice (one transaction) and answer; always consumes."""
        assert isinstance(event, MessageReceived)
        out = command_text(event) == OPT_OUT
        changed = await ctx.db(self._optout.choose, event.sender.id, out, event.at, event.room_id)
        text = (_OUT if changed else _OUT_AGAIN) if out else (_IN if changed else _IN_AGAIN)
        await answer(event, ctx, text)
        return True
