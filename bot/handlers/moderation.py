"""First for every group message: spam, illegal ads, personal data and flooding.

Wraps :class:`bot.moderation.ModerationDetector`. A flagged message gets a warning in the
group, @-mentioning the poster and naming the rule (the lexicon's reason, never the message:
a warning cannot repeat an ad or a number). An ad or a flood is consumed (no later handler
answers it) and is a strike (:class:`bot.moderation.StrikeBook`, over the ``moderation_strike``
table in production): at the ``moderation.strikes_to_remove``-th strike within
``moderation.strike_window`` the member is removed through the outbox and the group's manager
(else the ops contacts) is told privately: masked member, rule and count, never the message.
A message with personal data is warned about and goes on, so a question that happens to carry
a card number is still answered (its text is masked wherever it is kept).

Every send carries ``moderation:<rule>`` as its audit reason.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection

from loguru import logger

from bot.events import Event, MessageReceived, Remove, Say, contact_conv, room_conv
from bot.handlers.base import HandlerContext, event_key
from bot.moderation import (
    ModerationDetector,
    ModerationSettings,
    PastMessage,
    RecentMessages,
    Role,
    StrikeBook,
    StrikeDecision,
    Verdict,
)
from bot.privacy import mask
from bot.replies import moderation_removal, moderation_report, moderation_warning
from bot.tickets import masked_name

__all__ = ["ModerationHandler", "shared_detector"]

# Above this many characters the detector's worst case is milliseconds, so it runs in a worker
# thread rather than on the loop (docs/moderation.md, "Bad input and cost").
_OFF_LOOP_CHARS = 2000


@functools.cache
def shared_detector(settings: ModerationSettings | None = None) -> ModerationDetector:
    """The detector for ``settings`` (default limits when None) with the packaged lexicon,
    built once per process and settings (compiling the automata takes a tenth of a second;
    the detector is thread-safe)."""
    return ModerationDetector(settings)


class ModerationHandler:
    """Warns about ads, personal data and floods in welfare groups; strikes and removes."""

    name = "moderation"
    non_text = True  # images, QR images, contact and link cards are what it looks at
    always = False

    def __init__(
        self,
        detector: Callable[[], ModerationDetector] = shared_detector,
        *,
        staff: Callable[[], Collection[str]] = frozenset,
        recent: RecentMessages | None = None,
        strikes: StrikeBook | None = None,
        remove_members: bool = True,
        ops_contacts: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        """``detector``: gives the detector, called once, in a worker thread, at the first group
        message (compiling the automata is not start-up's cost). ``staff``: contact ids of ops
        staff (exempt like managers, read per message). ``strikes``: counts ads and floods
        (None: warnings only). ``remove_members``: False counts and reports without removing.
        ``ops_contacts``: told instead when a group has no manager."""
        self._make_detector = detector
        self._detector: ModerationDetector | None = None
        self._staff = staff
        self._recent = recent
        self._strikes = strikes
        self._remove = remove_members
        self._ops_contacts = ops_contacts

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """Every member message in a welfare group."""
        return (
            isinstance(event, MessageReceived)
            and event.room_id is not None
            and event.room_id in ctx.ops.groups
        )

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Warn about a flagged message; count a strike, remove at the last; consume ads and
        floods."""
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
        decision = None
        if self._strikes is not None:
            decision = await ctx.db(self._strikes.record, room, sender, verdict, event.at)
        logger.bind(
            group=room,
            contact=mask(sender),
            rule=verdict.rule,
            strikes=decision.strikes if decision else None,
        ).info("moderation: {} flagged", verdict.category)
        key = event_key(event)
        reason = f"moderation:{verdict.rule}"
        removing = decision is not None and decision.remove and self._remove
        text = (
            moderation_removal(verdict.reason, decision.strikes)
            if removing and decision is not None
            else moderation_warning(
                verdict.category, verdict.reason, decision.remaining if decision else None
            )
        )
        actions: list[tuple[Say | Remove, str]] = [
            (Say(room_conv(room), text, (sender,)), f"{key}:warn")
        ]
        if removing:
            actions.append((Remove(room, sender), f"{key}:remove"))
        if decision is not None and decision.remove:
            actions += self._reports(event, verdict, decision, removing, key, ctx)
        await ctx.send(actions, event.at, reason=reason)
        if removing and self._strikes is not None:
            # Let back in later, a member starts afresh. (A fault between the sends above and
            # this leaves the strikes; the next ad then removes at once, which is no harm.)
            await ctx.db(self._strikes.repository.clear, room, sender)
        return verdict.category != "personal_data"

    def _reports(
        self,
        event: MessageReceived,
        verdict: Verdict,
        decision: StrikeDecision,
        removed: bool,
        key: str,
        ctx: HandlerContext,
    ) -> list[tuple[Say | Remove, str]]:
        """Private notices to the group's manager (else the ops contacts): masked member, rule,
        count; never the message."""
        assert event.room_id is not None
        ops = ctx.ops
        group = ops.groups[event.room_id]
        manager = ops.managers.get(group.manager) if group.manager else None
        to = [manager.contact] if manager is not None else sorted(self._ops_contacts())
        if not to:
            logger.bind(group=group.id, rule=verdict.rule).warning(
                "moderation: group has no manager and entry.ops_contacts is empty; nobody told"
            )
        member = masked_name(event.sender)
        text = moderation_report(
            group.name, member, verdict.reason, decision.strikes, removed=removed
        )
        return [(Say(contact_conv(c), text), f"{key}:report:{c}") for c in to]

    def _role(self, contact_id: str, ctx: HandlerContext) -> Role:
        if contact_id in ctx.ops.manager_contacts:
            return "manager"
        return "staff" if contact_id in self._staff() else "member"

    @staticmethod
    async def _check(
        detector: ModerationDetector, event: MessageReceived, role: Role, history: list[PastMessage]
    ) -> Verdict:
        def check() -> Verdict:
            return detector.check(
                event.text, role=role, kind=event.kind, at=event.at, history=history
            )

        if len(event.text) > _OFF_LOOP_CHARS:
            return await asyncio.to_thread(check)
        return check()
