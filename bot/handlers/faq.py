"""Last in line: questions answered from the FAQ, or handed to a person as a ticket.

In a group the bot reacts when @-mentioned, or (``faq.questions_without_mention``) when a
message is clearly a question on a FAQ topic: a question mark or question word, and a topic
word or FAQ keyword. Casual chatter gets nothing. A confident FAQ match is answered; anything
else it reacted to becomes a ticket for the group's manager (bot/tickets.py). A sensitive topic
(投诉, 盗刷 ... ``support.sensitive_words``) skips the FAQ: an urgent ticket, and the member
gets the official hotline, never a marketing answer; without a mention it needs a question or
a first-person word (我, 本人), so chatter such as "大家小心被骗" opens nothing.

Privately the bot answers what the FAQ knows, gives the hotline on a sensitive topic, and
stays quiet otherwise. Every group message that reaches this handler (ads and commands were
consumed earlier) is remembered, masked, as context for the next ticket of its group.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.config import FaqSettings
from bot.events import Event, MessageReceived
from bot.faq import FaqIndex, TermSet, is_question, normalise
from bot.handlers.base import HandlerContext, event_key
from bot.tickets import ChatContext, Escalation, TicketDesk

__all__ = ["FaqHandler"]

_FIRST_PERSON = TermSet(["我", "本人", "俺"])
_ASK_PLAINLY = "您好，请直接告诉我您的问题，例如「年费怎么减免？」。"


class FaqHandler:
    """FAQ answers, and tickets for what the FAQ cannot answer (module docstring)."""

    name = "faq"
    always = False

    def __init__(
        self,
        faq: Callable[[], FaqIndex],
        desk: TicketDesk,
        context: ChatContext,
        settings: FaqSettings,
    ) -> None:
        self._faq = faq
        self._desk = desk
        self._context = context
        self._settings = settings
        self._question_words = TermSet(settings.question_words)
        self._topics = TermSet(settings.topic_words)

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Every text message: group ones feed the context even when not answered."""
        return isinstance(event, MessageReceived)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer, escalate, or (chatter) only remember; True when the bot reacted."""
        assert isinstance(event, MessageReceived)
        if event.room_id is None:
            return await self._private(event, ctx)
        room = event.room_id
        before = self._context.recent(room)
        self._context.record(room, event.sender, event.text)
        text = normalise(event.text)
        mentioned = ctx.bot_id in event.mentions
        staff = self._desk.is_staff(event.sender.id)
        asked = is_question(text, self._question_words)
        topic = self._desk.sensitive_topic(text)
        if topic and not staff and (mentioned or asked or _FIRST_PERSON.any_in(text)):
            await self._escalate(event, ctx, before, topic)
            return True
        if not mentioned and not (
            self._settings.questions_without_mention
            and not staff
            and asked
            and (self._topics.any_in(text) or self._faq().has_keyword(text))
        ):
            return False
        match = self._faq().answer(event.text)
        key = event_key(event)
        if match is not None:
            answer = match.entry.answer
            await ctx.say_in_room(room, event.at, answer, key, (event.sender.id,))
            return True
        if staff:
            return False  # a manager's own musing in the group never opens a ticket
        if not any(ch.isalnum() for ch in text):
            await ctx.say_in_room(room, event.at, _ASK_PLAINLY, key, (event.sender.id,))
            return True
        await self._escalate(event, ctx, before, "")
        return True

    async def _private(self, event: MessageReceived, ctx: HandlerContext) -> bool:
        key = event_key(event)
        if self._desk.sensitive_topic(event.text):
            await ctx.reply(event.sender.id, event.at, self._desk.hotline_text(), key)
            return True
        match = self._faq().answer(event.text.strip())
        if match is None:
            return False
        await ctx.reply(event.sender.id, event.at, match.entry.answer, key)
        return True

    async def _escalate(
        self, event: MessageReceived, ctx: HandlerContext, before: tuple[str, ...], topic: str
    ) -> None:
        assert event.room_id is not None
        escalation = Escalation(
            key=event_key(event),
            group_id=event.room_id,
            member=event.sender,
            question=event.text,
            at=event.at,
            context=before,
            topic=topic,
        )
        await ctx.db(self._desk.escalate, escalation)
