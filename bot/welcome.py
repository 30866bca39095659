"""Batched welcomes: everyone who joins a group within the batch window gets one message.

Joins are stored as memberships first, so a restart inside the window loses nobody; the welcome
is sent when the window after the first unwelcomed join has passed, @-mentioning every newcomer
still in the group.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger

from bot.campaigns import CampaignPlanner, campaign_context, group_context
from bot.events import Say, room_conv
from bot.opsdata.models import Campaign, WelfareGroup
from bot.outbox import Outbox, OutboxItem
from db.repositories import MembershipRepo
from scheduler.clock import Clock


class WelcomeService:
    """Sends one welcome per batch of newcomers, with the group's perk calendar."""

    def __init__(
        self,
        planner: Callable[[], CampaignPlanner],
        memberships: MembershipRepo,
        outbox: Outbox,
        clock: Clock,
        window: timedelta,
        campaign_id: str | None = None,
        account: str = "bot",
    ) -> None:
        self._planner = planner
        self._memberships = memberships
        self._outbox = outbox
        self._clock = clock
        self._window = window
        self._campaign_id = campaign_id
        self._account = account

    def welcome_campaign(self, group: WelfareGroup, at: datetime) -> Campaign | None:
        """The welcome campaign that reaches ``group`` on ``at``'s date, if any."""
        ops = self._planner().ops
        for c in ops.campaigns_of_kind("welcome"):
            if self._campaign_id and c.id != self._campaign_id:
                continue
            if ops.targets(c, group) and c.valid.contains(at.date()):
                return c
        return None

    def next_due(self) -> datetime | None:
        """When the earliest pending batch is due."""
        pending = self._memberships.pending_welcome_groups()
        if not pending:
            return None
        return min(first for _, first in pending) + self._window

    def run_due(self) -> int:
        """Queue the welcomes whose window has passed; return how many were queued."""
        now = self._clock.now()
        queued = 0
        for group_id, first in self._memberships.pending_welcome_groups():
            if first + self._window > now:
                continue
            try:
                queued += self._welcome(group_id, now)
            except Exception as exc:
                # Never retried in a busy loop: the batch is closed without a welcome, loudly.
                logger.opt(exception=exc).bind(group=group_id).error("welcome failed: {}", exc)
                ids = [m.id for m in self._memberships.unwelcomed(group_id)]
                self._memberships.mark_welcomed(ids, now)
        return queued

    def _welcome(self, group_id: str, now: datetime) -> int:
        planner = self._planner()
        newcomers = self._memberships.unwelcomed(group_id)
        ids = [m.id for m in newcomers]
        group = planner.ops.groups.get(group_id)
        campaign = self.welcome_campaign(group, now) if group else None
        if group is None or campaign is None or not newcomers:
            self._memberships.mark_welcomed(ids, now)
            return 0
        members = [{"id": m.person_id, "name": m.person_name} for m in newcomers]
        ctx = {
            "group": group_context(group),
            "campaign": campaign_context(campaign),
            "data": campaign.data,
            "now": now,
            "merchants": [],
            "members": members,
            "perks": planner.perks(group, now.date()),
        }
        text = planner.renderer.render(campaign.template, ctx)
        item = OutboxItem(
            key=f"welcome:{group_id}:{min(ids)}",
            action=Say(room_conv(group_id), text, tuple(m["id"] for m in members)),
            not_before=now,
            campaign_id=campaign.id,
            group_id=group_id,
            marketing=False,
            account=self._account,
        )
        # One transaction: a crash can neither send a welcome twice nor mark a batch welcomed
        # whose welcome was never queued.
        added = self._outbox.enqueue(
            [item], also=lambda s: MembershipRepo(s).mark_welcomed(ids, now)
        )
        logger.bind(group=group_id, newcomers=len(ids)).info("welcome queued")
        return added
