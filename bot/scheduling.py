"""Live campaign scheduling: turns due occurrences into outbox items, exactly once.

Progress is a checkpoint in the database ("every occurrence up to here is handled"), so a restart
resumes where the bot stopped: an occurrence missed while the bot was down is sent late if it is
no older than the grace period, and recorded as missed otherwise.

Nothing here runs on the event loop but the bookkeeping of what to do next: an occurrence is
planned, rendered and queued in a worker thread (the planner is pure given its ops-data version,
which a reload replaces whole and never changes in place), and every database call goes through
:mod:`bot.retry`. A transient fault (database locked or disconnected) is never recorded: the
checkpoint stops before the occurrence it hit, and the occurrence is tried again after a pause
that grows while the fault lasts. A permanent fault is recorded ``skipped`` with its reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from loguru import logger

from bot.campaigns import CampaignPlanner
from bot.events import Say, room_conv
from bot.outbox import Outbox, OutboxItem
from bot.retry import DEFAULT_POLICY, RetryPolicy, fault_reason, is_transient
from db.repositories import CheckpointRepo, OccurrenceRepo
from scheduler.clock import Clock

CHECKPOINT = "campaigns"
# Outbox rows per insert transaction (one executemany each): small enough that a reply queued
# meanwhile waits little for SQLite's write lock (bench/latency.py: p99 halved against 500).
_BATCH = 100
# How long the worker thread renders before it lets go of the GIL: the event loop's thread then
# takes it at once instead of waiting out the interpreter's 5 ms switch interval.
_GIL_SLICE_S = 0.0005
_FIRST_PAUSE = timedelta(seconds=1)
_LONGEST_PAUSE = timedelta(minutes=1)

T = TypeVar("T")


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
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._planner = planner
        self._outbox = outbox
        self._occurrences = occurrences
        self._checkpoints = checkpoints
        self._clock = clock
        self._grace = grace
        self._account = account
        self.retry = retry
        self._next: datetime | None = None
        # The planner itself, not its id(): a reloaded planner may reuse a freed one's id.
        self._next_for: tuple[CampaignPlanner, datetime] | None = None
        # After a transient fault: not before this instant, and the pause after the next one.
        self._retry_at: datetime | None = None
        self._pause = _FIRST_PAUSE

    def _checkpoint(self) -> datetime:
        mark = self._checkpoints.get(CHECKPOINT)
        if mark is None:
            # First start: the past is not ours to replay.
            mark = self._clock.now()
            self._checkpoints.set(CHECKPOINT, mark)
        return mark

    def next_due(self) -> datetime | None:
        """The next instant a campaign fires (or a held one is tried again), or None."""
        planner = self._planner()
        mark = self._checkpoint()
        if not (
            self._next_for is not None
            and self._next_for[0] is planner
            and self._next_for[1] == mark
        ):
            times = [
                t
                for c in planner.scheduled_campaigns()
                if (t := planner.next_fire(c, mark)) is not None
            ]
            self._next = min(times) if times else None
            self._next_for = (planner, mark)
        if self._next is not None and self._retry_at is not None:
            return max(self._next, self._retry_at)
        return self._next

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, transient faults retried with backoff."""
        name = getattr(fn, "__qualname__", type(fn).__name__)
        return await self.retry.call_async(lambda: asyncio.to_thread(fn, *args), what=name)

    async def run_due(self) -> int:
        """Handle every occurrence up to now; return how many messages were queued.

        Raises only when the checkpoint itself cannot be read or written after the retries
        (the caller's loop tries again later; nothing was recorded wrongly).
        """
        planner = self._planner()
        now = self._clock.now()
        if self._retry_at is not None and now < self._retry_at:
            return 0
        mark = await self._db(self._checkpoint)
        if now <= mark:
            return 0
        queued = 0
        held: datetime | None = None  # the earliest occurrence a transient fault kept back
        start, end = mark + timedelta(microseconds=1), now + timedelta(microseconds=1)
        for campaign in planner.scheduled_campaigns():
            for fire_at in planner.fire_times(campaign, start, end):
                try:
                    queued += await asyncio.to_thread(
                        self._fire, planner, campaign.id, fire_at, now
                    )
                except Exception as exc:  # safe: transient ones are kept, others recorded
                    if is_transient(exc):
                        held = fire_at if held is None else min(held, fire_at)
                        logger.bind(campaign=campaign.id, fire_at=fire_at.isoformat()).warning(
                            "campaign occurrence held, tried again later: {}", fault_reason(exc)
                        )
                        break  # this campaign's later occurrences wait behind it, in order
                    # Recorded and passed: one broken campaign must not hold the checkpoint
                    # (and so every other campaign) in place, nor be retried in a busy loop.
                    reason = fault_reason(exc)
                    logger.opt(exception=exc).bind(campaign=campaign.id).error(
                        "campaign occurrence failed: {}", reason
                    )
                    record = self._occurrences.record
                    await self._db(record, campaign.id, fire_at, "skipped", f"error: {reason}")
        if held is None:
            self._retry_at, self._pause = None, _FIRST_PAUSE
            await self._db(self._checkpoints.set, CHECKPOINT, now)
        else:
            # Everything before the held occurrence is done; what came after it in other
            # campaigns is recorded, so the next run passes over it without rendering again.
            self._retry_at = now + self._pause
            self._pause = min(self._pause * 2, _LONGEST_PAUSE)
            if held - timedelta(microseconds=1) > mark:
                await self._db(self._checkpoints.set, CHECKPOINT, held - timedelta(microseconds=1))
        return queued

    def _fire(
        self, planner: CampaignPlanner, campaign_id: str, fire_at: datetime, now: datetime
    ) -> int:
        """Plan, render and queue one occurrence (in a worker thread); how many rows were new.

        Safe to run again after any fault: the outbox keys dedupe the sends already queued,
        and an occurrence already recorded is not planned again.
        """
        call = self.retry.call
        campaign = planner.ops.campaigns[campaign_id]
        log = logger.bind(campaign=campaign_id, fire_at=fire_at.isoformat())
        if call(lambda: self._occurrences.get(campaign_id, fire_at), what="occurrence") is not None:
            return 0  # handled before a fault held an earlier occurrence back
        if planner.in_quiet_hours(campaign, fire_at):
            call(
                lambda: self._occurrences.record(campaign_id, fire_at, "skipped", "quiet_hours"),
                what="occurrence",
            )
            log.info("occurrence in quiet hours; not sent")
            return 0
        if now - fire_at > self._grace:
            reason = "older than grace"
            recorded = call(
                lambda: self._occurrences.record(campaign_id, fire_at, "missed", reason),
                what="occurrence",
            )
            if recorded:
                log.warning("occurrence missed while the bot was down")
            return 0
        late = now - fire_at
        added = groups = 0
        batch: list[OutboxItem] = []
        slice_end = time.perf_counter() + _GIL_SLICE_S
        for d in planner.iter_deliveries(campaign, fire_at):
            batch.append(
                OutboxItem(
                    key=d.key,
                    action=Say(room_conv(d.group.id), d.text),
                    not_before=d.send_at + late,
                    campaign_id=campaign_id,
                    group_id=d.group.id,
                    marketing=campaign.marketing,
                    account=d.account or self._account,  # the group's account
                )
            )
            if len(batch) == _BATCH:
                added += self._enqueue(batch)
                groups += len(batch)
                batch = []
            if time.perf_counter() >= slice_end:
                time.sleep(0)  # hand the GIL to the event loop if it is waiting for it
                slice_end = time.perf_counter() + _GIL_SLICE_S
        added += self._enqueue(batch)
        groups += len(batch)
        call(
            lambda: self._occurrences.record(campaign_id, fire_at, "enqueued", f"{added} messages"),
            what="occurrence",
        )
        log.bind(groups=groups).info("campaign fired")
        return added

    def _enqueue(self, batch: list[OutboxItem]) -> int:
        # One transaction per batch: a fault rolls back the batch whole, so a retry re-inserts
        # it; a crash after some batches leaves them queued and the re-run adds the rest.
        return self.retry.call(lambda: self._outbox.enqueue(batch), what="outbox enqueue")
