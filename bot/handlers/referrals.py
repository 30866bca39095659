"""``我的邀请`` and ``邀请排行`` (DESIGN.md "Chat commands"), privately or @-ing the bot.

The answers come from :class:`bot.referral_notices.ReferralNotices`, built in a worker thread
(database reads); the leaderboard is kept a minute, so a busy group asking it costs one query
a minute, not one per question.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext
from bot.handlers.text import addressed_to_bot, answer, command_text
from bot.referral_notices import ReferralNotices

__all__ = ["LeaderboardHandler", "MyReferralsHandler"]

MY_REFERRALS = "我的邀请"
LEADERBOARD = "邀请排行"
_LEADERBOARD_FRESH = timedelta(minutes=1)


class MyReferralsHandler:
    """``我的邀请``: the member's code, link, QR address and progress."""

    name = "command:my-referrals"
    always = False

    def __init__(self, notices: ReferralNotices) -> None:
        self._notices = notices

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """The exact words, privately or @-mentioning the bot in a group."""
        return (
            isinstance(event, MessageReceived)
            and command_text(event) == MY_REFERRALS
            and addressed_to_bot(event, ctx)
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer where asked; always consumes."""
        assert isinstance(event, MessageReceived)
        text = await ctx.db(self._notices.my_referrals, event.sender.id, event.at)
        await answer(event, ctx, text)
        return True


class LeaderboardHandler:
    """``邀请排行``: the top 10 referrers with masked names."""

    name = "command:leaderboard"
    always = False

    def __init__(self, notices: ReferralNotices) -> None:
        self._notices = notices
        self._cached: tuple[datetime, str] | None = None

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """The exact words, privately or @-mentioning the bot in a group."""
        return (
            isinstance(event, MessageReceived)
            and command_text(event) == LEADERBOARD
            and addressed_to_bot(event, ctx)
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer where asked; always consumes."""
        assert isinstance(event, MessageReceived)
        if self._cached is None or event.at - self._cached[0] >= _LEADERBOARD_FRESH:
            self._cached = (event.at, await ctx.db(self._notices.leaderboard))
        await answer(event, ctx, self._cached[1])
        return True
