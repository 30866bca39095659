"""Live campaign scheduling: turns due occurrences into outbox items, exactly once.

Progress is a checkpoint in the database ("every occurrence up to here is handled"), so a restart
resumes where the bot stopped: an occurrence missed while the bot was down is sent late if it is
no older than the grace period, and recorded as missed otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger

from bot.campaigns import CampaignPlanner
from bot.events import Say, room_conv
from bot.outbox import Outbox, OutboxItem
from db.repositories import CheckpointRepo, OccurrenceRepo
from scheduler.clock import Clock

CHECKPOINT = "campaigns"
_CHUNK = 200  # groups rendered between two yields to the event loop


class CampaignScheduler:
    """Fires campaigns on time through the outbox; one instance per running bot."""

    def __init__(
        self,
        planner: Callable[[], CampaignPlanner],
        outbox: Outbox,
        occurrences: OccurrenceRepo,
        checkpoints: CheckpointRepo,
        clock: Clock,
        grace: timedelta,
        account: str = "bot",
    ) -> None:
        self._planner = planner
        self._outbox = outbox
        self._occurrences = occurrences
        self._checkpoints = checkpoints
        self._clock = clock
        self._grace = grace
        self._account = account
        self._next: datetime | None = None
        # The planner itself, not its id(): a reloaded planner may reuse a freed one's id.
        self._next_for: tuple[CampaignPlanner, datetime] | None = None

    def _checkpoint(self) -> datetime:
        mark = self._checkpoints.get(CHECKPOINT)
        if mark is None:
            # First start: the past is not ours to replay.
            mark = self._clock.now()
            self._checkpoints.set(CHECKPOINT, mark)
        return mark

    def next_due(self) -> datetime | None:
        """The next instant a campaign fires, or None when nothing is scheduled."""
        planner = self._planner()
        mark = self._checkpoint()
        if (
            self._next_for is not None
            and self._next_for[0] is planner
            and self._next_for[1] == mark
        ):
            return self._next
        times = [
            t
            for c in planner.scheduled_campaigns()
            if (t := planner.next_fire(c, mark)) is not None
        ]
        self._next = min(times) if times else None
        self._next_for = (planner, mark)
        return self._next

    async def run_due(self) -> int:
        """Handle every occurrence up to now; return how many messages were queued."""
        planner = self._planner()
        now = self._clock.now()
        mark = self._checkpoint()
        if now <= mark:
            return 0
        queued = 0
        start, end = mark + timedelta(microseconds=1), now + timedelta(microseconds=1)
        for campaign in planner.scheduled_campaigns():
            for fire_at in planner.fire_times(campaign, start, end):
                try:
                    queued += await self._fire(planner, campaign.id, fire_at, now)
                except Exception as exc:
                    # Recorded and passed: one broken campaign must not hold the checkpoint
                    # (and so every other campaign) in place, nor be retried in a busy loop.
                    logger.opt(exception=exc).bind(campaign=campaign.id).error(
                        "campaign occurrence failed: {}", exc
                    )
                    self._occurrences.record(campaign.id, fire_at, "skipped", f"error: {exc}"[:200])
        self._checkpoints.set(CHECKPOINT, now)
        return queued

    async def _fire(
        self, planner: CampaignPlanner, campaign_id: str, fire_at: datetime, now: datetime
    ) -> int:
        campaign = planner.ops.campaigns[campaign_id]
        log = logger.bind(campaign=campaign_id, fire_at=fire_at.isoformat())
        if planner.in_quiet_hours(campaign, fire_at):
            self._occurrences.record(campaign_id, fire_at, "skipped", "quiet_hours")
            log.info("occurrence in quiet hours; not sent")
            return 0
        if now - fire_at > self._grace:
            if self._occurrences.record(campaign_id, fire_at, "missed", "older than grace"):
                log.warning("occurrence missed while the bot was down")
            return 0
        late = now - fire_at
        added = groups = 0
        chunk: list[OutboxItem] = []
        for d in planner.iter_deliveries(campaign, fire_at):
            chunk.append(
                OutboxItem(
                    key=d.key,
                    action=Say(room_conv(d.group.id), d.text),
                    not_before=d.send_at + late,
                    campaign_id=campaign_id,
                    group_id=d.group.id,
                    marketing=campaign.marketing,
                    account=self._account,
                )
            )
            if len(chunk) == _CHUNK:
                added, groups = added + self._outbox.enqueue(chunk), groups + len(chunk)
                chunk = []
                # Thousands of groups take seconds to render: let events and keep-alives
                # through between chunks. A crash mid-way is safe: keys dedupe the re-run.
                await asyncio.sleep(0)
        added, groups = added + self._outbox.enqueue(chunk), groups + len(chunk)
        self._occurrences.record(campaign_id, fire_at, "enqueued", f"{added} messages")
        log.bind(groups=groups).info("campaign fired")
        return added
