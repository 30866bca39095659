"""Last in line: questions answered from the FAQ, or pointed at the group's customer manager.

In a group the bot answers only when @-mentioned; privately it answers what the FAQ knows and
stays quiet otherwise. This is where escalation to a ticket (issue 11) takes over from the
"ask your manager" answer.
"""

from __future__ import annotations

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key
from bot.opsdata.bundle import OpsData
from bot.replies import answer_faq, no_answer

__all__ = ["FaqHandler"]


class FaqHandler:
    """FAQ answers, and the manager's name when the FAQ has none."""

    name = "faq"
    always = False

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Private text, and group text that @-mentions the bot."""
        if not isinstance(event, MessageReceived):
            return False
        return event.room_id is None or ctx.bot_id in event.mentions

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer; in a group a question the FAQ cannot answer names the manager."""
        assert isinstance(event, MessageReceived)
        ops = ctx.ops
        answer = answer_faq(ops.faq, event.text if event.room_id else event.text.strip())
        key = event_key(event)
        if event.room_id is None:
            if answer is None:
                return False
            await ctx.reply(event.sender.id, event.at, answer, key)
            return True
        text = answer or _no_answer(ops, event.room_id)
        await ctx.say_in_room(event.room_id, event.at, text, key, (event.sender.id,))
        return True


def _no_answer(ops: OpsData, group_id: str) -> str:
    group = ops.groups.get(group_id)
    manager = ops.managers.get(group.manager or "") if group is not None else None
    return no_answer(manager.name if manager is not None else None)
