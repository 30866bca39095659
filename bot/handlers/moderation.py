"""First for every group message: spam, illegal ads, personal data and flooding.

Wraps :class:`bot.moderation.ModerationDetector`. A flagged message gets a warning in the
group, @-mentioning the poster and naming the rule (the lexicon's reason, never the message).
An ad or a flood is consumed: no later handler answers it. A message with personal data is
warned about and goes on, so a question that happens to carry a card number is still answered.

Not yet here (issue 11): strikes and removal after N strikes (``bot.moderation.StrikeBook``
over a table), telling the manager, the audit record of the rule.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection

from loguru import logger

from bot.events import Event, MessageReceived
from bot.handlers.base import HandlerContext, event_key
from bot.moderation import ModerationDetector, PastMessage, RecentMessages, Role, Verdict
from bot.opsdata.bundle import OpsData
from bot.privacy import mask
from bot.replies import moderation_warning

__all__ = ["ModerationHandler", "shared_detector"]

# Above this many characters the detector's worst case is milliseconds, so it runs in a worker
# thread rather than on the loop (docs/moderation.md, "Bad input and cost").
_OFF_LOOP_CHARS = 2000


@functools.cache
def shared_detector() -> ModerationDetector:
    """The detector with default settings and the packaged lexicon, built once per process
    (compiling the automata takes a tenth of a second; the detector is thread-safe)."""
    return ModerationDetector()


class ModerationHandler:
    """Warns about ads, personal data and floods in welfare groups."""

    name = "moderation"
    always = False

    def __init__(
        self,
        detector: Callable[[], ModerationDetector] = shared_detector,
        *,
        staff: Callable[[], Collection[str]] = frozenset,
        recent: RecentMessages | None = None,
    ) -> None:
        """``detector``: gives the detector, called once, in a worker thread, at the first group
        message (compiling the automata is not start-up's cost). ``staff``: contact ids of ops
        staff (exempt like managers, read per message)."""
        self._make_detector = detector
        self._detector: ModerationDetector | None = None
        self._staff = staff
        self._recent = recent
        self._managers: tuple[OpsData | None, frozenset[str]] = (None, frozenset())

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Every member message in a welfare group."""
        return (
            isinstance(event, MessageReceived)
            and event.room_id is not None
            and event.room_id in ctx.ops.groups
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Warn about a flagged message; consume ads and floods."""
        assert isinstance(event, MessageReceived) and event.room_id is not None
        if self._detector is None:
            self._detector = await asyncio.to_thread(self._make_detector)
        if self._recent is None:
            self._recent = RecentMessages(per_member=self._detector.settings.flood_repeats + 2)
        room, sender = event.room_id, event.sender.id
        this = PastMessage(event.at, event.text)
        history = self._recent.history(room, sender)
        if history and history[-1] == this:  # run again after a fault: already remembered
            history.pop()
        else:
            self._recent.remember(room, sender, this)
        verdict = await self._check(self._detector, event, self._role(sender, ctx), history)
        if not verdict.flagged:
            return False
        logger.bind(group=room, contact=mask(sender), rule=verdict.rule).info(
            "moderation: {} flagged", verdict.category
        )
        text = moderation_warning(verdict.category, verdict.reason)
        await ctx.say_in_room(room, event.at, text, event_key(event) + ":warn", (sender,))
        return verdict.category != "personal_data"

    def _role(self, contact_id: str, ctx: HandlerContext) -> Role:
        ops = ctx.ops
        if self._managers[0] is not ops:  # once per ops-data version
            self._managers = (ops, frozenset(m.contact for m in ops.managers.values()))
        if contact_id in self._managers[1]:
            return "manager"
        return "staff" if contact_id in self._staff() else "member"

    @staticmethod
    async def _check(
        detector: ModerationDetector, event: MessageReceived, role: Role, history: list[PastMessage]
    ) -> Verdict:
        def check() -> Verdict:
            return detector.check(event.text, role=role, at=event.at, history=history)

        if len(event.text) > _OFF_LOOP_CHARS:
            return await asyncio.to_thread(check)
        return check()
