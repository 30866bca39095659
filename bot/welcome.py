"""Batched welcomes: everyone who joins a group within the batch window gets one message.

Joins are stored as memberships first, so a restart inside the window loses nobody; the welcome
is sent when the window after the first unwelcomed join has passed, @-mentioning every newcomer
still in the group.

Off the loop and without loss: each group's batch is read, rendered and queued in a worker
thread, as one transaction with the batch marked welcomed. A transient fault (database locked or
disconnected) is retried with backoff (:mod:`bot.retry`); one that outlasts the retries leaves the
batch unwelcomed, to be tried again after a growing pause, so a passing fault never closes a
batch nobody was welcomed in. Only a permanent fault (a welcome that cannot be rendered) closes
the batch without a welcome, logged with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from loguru import logger

from bot.campaigns import CampaignPlanner, campaign_context, group_context
from bot.events import Say, room_conv
from bot.opsdata.models import Campaign, WelfareGroup
from bot.outbox import Outbox, OutboxItem
from bot.retry import DEFAULT_POLICY, RetryPolicy, fault_reason, is_transient
from db.repositories import MembershipRepo
from scheduler.clock import Clock

_FIRST_PAUSE = timedelta(seconds=1)
_LONGEST_PAUSE = timedelta(minutes=1)

T = TypeVar("T")


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
        retry: RetryPolicy = DEFAULT_POLICY,
        opted_out: Callable[[Iterable[str]], set[str]] | None = None,
        ours: Callable[[str], bool] | None = None,
    ) -> None:
        """``ours(group_id)``: whether this process welcomes in that group (several processes
        on PostgreSQL divide the groups by the accounts they hold); None: every group."""
        self._planner = planner
        self._ours = ours
        # Who among some members opted out of marketing (bot.optout): one lookup per batch.
        self._opted_out = opted_out
        self._memberships = memberships
        self._outbox = outbox
        self._clock = clock
        self._window = window
        self._campaign_id = campaign_id
        self._account = account
        self.retry = retry
        # After a transient fault: not before this instant, and the pause after the next one.
        self._retry_at: datetime | None = None
        self._pause = _FIRST_PAUSE

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
        """When the earliest pending batch is due (or a held one is tried again)."""
        pending = self._mine(self._memberships.pending_welcome_groups())
        if not pending:
            return None
        due = min(first for _, first in pending) + self._window
        return max(due, self._retry_at) if self._retry_at is not None else due

    def _mine(self, pending: list[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        ours = self._ours
        return pending if ours is None else [p for p in pending if ours(p[0])]

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, transient faults retried with backoff."""
        name = getattr(fn, "__qualname__", type(fn).__name__)
        return await self.retry.call_async(lambda: asyncio.to_thread(fn, *args), what=name)

    async def run_due(self) -> int:
        """Queue the welcomes whose window has passed; return how many were queued."""
        now = self._clock.now()
        if self._retry_at is not None and now < self._retry_at:
            return 0
        queued = 0
        held = False
        pending = self._mine(await self._db(self._memberships.pending_welcome_groups))
        for group_id, first in pending:
            if first + self._window > now:
                continue
            try:
                queued += await self._db(self._welcome, group_id, now)
            except Exception as exc:  # safe: a transient fault keeps the batch, others close it
                if is_transient(exc):
                    held = True
                    logger.bind(group=group_id).warning(
                        "welcome held, tried again later: {}", fault_reason(exc)
                    )
                    continue
                # Never retried in a busy loop: the batch is closed without a welcome, loudly.
                logger.opt(exception=exc).bind(group=group_id).error(
                    "welcome failed; batch closed without a welcome: {}", fault_reason(exc)
                )
                await self._db(self._close_batch, group_id, now)
        if held:
            self._retry_at = now + self._pause
            self._pause = min(self._pause * 2, _LONGEST_PAUSE)
        else:
            self._retry_at, self._pause = None, _FIRST_PAUSE
        return queued

    def _close_batch(self, group_id: str, now: datetime) -> int:
        ids = [m.id for m in self._memberships.unwelcomed(group_id)]
        return self._memberships.mark_welcomed(ids, now)

    def _welcome(self, group_id: str, now: datetime) -> int:
        """One group's batch: read, render and queue (in a worker thread; safe to run again)."""
        planner = self._planner()
        newcomers = self._memberships.unwelcomed(group_id)
        ids = [m.id for m in newcomers]
        group = planner.ops.groups.get(group_id)
        campaign = self.welcome_campaign(group, now) if group else None
        if group is None or campaign is None or not newcomers:
            self._memberships.mark_welcomed(ids, now)
            return 0
        # A member who sent 退订 is not @-mentioned (nor named) in the welcome's perk pitch.
        skip = self._opted_out(m.person_id for m in newcomers) if self._opted_out else set()
        members = [
            {"id": m.person_id, "name": m.person_name}
            for m in newcomers
            if m.person_id not in skip
        ]
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
        if not text:
            # The template's {% if %} leaves this group out: no blank message is sent.
            logger.bind(group=group_id, campaign=campaign.id).warning(
                "welcome template {} rendered nothing for this group; batch closed unsent",
                campaign.template,
            )
            self._memberships.mark_welcomed(ids, now)
            return 0
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
