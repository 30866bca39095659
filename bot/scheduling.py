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

Several processes (PostgreSQL) run this loop on one database. An occurrence is claimed before
its fan-out, by inserting its unique row (``enqueued``, no ``fanned_out_at``) with a claim that
the fan-out renews while it runs: exactly one process fans it out. A fan-out cut short (the
process died) is resumed, by any process, once its claim lapsed: the outbox keys make queueing
it again add only what was missing; ``fanned_out_at`` marks it complete. Claims are in lease
time (:mod:`bot.leases`), which all processes share, not the bot's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from loguru import logger

from bot.campaigns import CampaignPlanner
from bot.events import Say, room_conv
from bot.leases import DEFAULT_TTL, LeaseClock, holder_id
from bot.outbox import PRIORITY_PUSH, Outbox, OutboxItem
from bot.retry import DEFAULT_POLICY, RetryPolicy, fault_reason, is_transient
from db.repositories import CheckpointRepo, OccurrenceRepo
from scheduler.clock import SHANGHAI, Clock

CHECKPOINT = "campaigns"
# Outbox rows per insert transaction: small enough that a reply queued meanwhile waits little
# for SQLite's write lock (bench/latency.py: reply p99 16 ms during a 20,000-group fan-out, 2.5x
# idle; 500 doubled it), large enough that commits are not most of the fan-out's cost.
_BATCH = 250
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
        *,
        holder: str | None = None,
        lease_time: Callable[[], datetime] | None = None,
        claim_for: timedelta = DEFAULT_TTL,
        solo: bool = True,
    ) -> None:
        """``holder`` names this process in fan-out claims, held ``claim_for`` at a time in
        ``lease_time``; ``solo``: no other process runs on the database (SQLite), so a fan-out
        left unfinished is an earlier run's and is resumed at once."""
        self._planner = planner
        self._outbox = outbox
        self._occurrences = occurrences
        self._checkpoints = checkpoints
        self._clock = clock
        self._grace = grace
        self._account = account
        self.retry = retry
        self._holder = holder or holder_id()
        self._lease_time = lease_time or LeaseClock().now
        self._claim_for = claim_for
        self._solo = solo
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
        queued = await self._resume(planner, now)
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
                    finish = self._occurrences.finish_fanout  # if it failed mid-fan-out
                    await self._db(
                        finish, campaign.id, fire_at, self._holder, f"error: {reason}", now
                    )
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

    def _lease_now(self) -> datetime:
        """Lease time against which claims lapse; alone on the database, every claim left by
        another holder (an earlier run) counts as lapsed."""
        now = self._lease_time()
        return now + self._claim_for if self._solo else now

    async def _resume(self, planner: CampaignPlanner, now: datetime) -> int:
        """Finish fan-outs a process (this one before a restart, or another) left unfinished
        and whose claim lapsed; returns how many rows were queued."""
        queued = 0
        for campaign_id, stored in await self._db(self._occurrences.unfinished, self._lease_now()):
            # Back in the campaigns' zone: the fire time is spelled in every outbox key, and a
            # UTC spelling would make new keys (a second send per group) instead of deduping.
            fire_at = stored.astimezone(SHANGHAI)
            log = logger.bind(campaign=campaign_id, fire_at=fire_at.isoformat())
            log.warning("resuming a campaign fan-out left unfinished")
            try:
                queued += await asyncio.to_thread(
                    self._fire, planner, campaign_id, fire_at, now, True
                )
            except Exception as exc:  # safe: transient ones are resumed on a later pass
                if is_transient(exc):
                    log.warning("fan-out resume held, tried again later: {}", fault_reason(exc))
                    continue
                reason = f"error: {fault_reason(exc)}"
                log.opt(exception=exc).error("fan-out resume failed: {}", reason)
                finish = self._occurrences.finish_fanout
                await self._db(finish, campaign_id, fire_at, self._holder, reason, now)
        return queued

    def _claim(self, campaign_id: str, fire_at: datetime) -> bool:
        """Take (or renew) this process's claim on the occurrence's fan-out."""
        lease_now = self._lease_now()
        until = self._lease_time() + self._claim_for
        return self.retry.call(
            lambda: self._occurrences.claim_fanout(
                campaign_id, fire_at, self._holder, lease_now, until
            ),
            what="occurrence claim",
        )

    def _fire(
        self,
        planner: CampaignPlanner,
        campaign_id: str,
        fire_at: datetime,
        now: datetime,
        resume: bool = False,
    ) -> int:
        """Plan, render and queue one occurrence (in a worker thread); how many rows were new.

        Safe to run again after any fault: the outbox keys dedupe the sends already queued,
        and an occurrence already recorded is not planned again (``resume``: finish one whose
        fan-out was cut short).
        """
        call = self.retry.call
        log = logger.bind(campaign=campaign_id, fire_at=fire_at.isoformat())
        if resume:
            return self._fan_out(planner, campaign_id, fire_at, now, log, release=False)
        campaign = planner.ops.campaigns[campaign_id]
        if call(lambda: self._occurrences.get(campaign_id, fire_at), what="occurrence") is not None:
            return 0  # handled before a fault held an earlier occurrence back, or elsewhere
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
        return self._fan_out(planner, campaign_id, fire_at, now, log)

    def _fan_out(
        self,
        planner: CampaignPlanner,
        campaign_id: str,
        fire_at: datetime,
        now: datetime,
        log: Any,
        release: bool = True,
    ) -> int:
        """Claim the occurrence, queue a send per group, mark it fanned out; rows added.

        A fault lets the claim go (what was queued stays, the keys dedupe a new try), so the
        occurrence is held or recorded exactly as if it had never been claimed; only a process
        that dies mid-fan-out leaves its claim to lapse and be resumed. A resumed fan-out
        (``release`` False: its occurrence is behind the checkpoint) keeps it to lapse again.
        """
        if not self._claim(campaign_id, fire_at):
            return 0  # another process has it in hand
        try:
            return self._queue_all(planner, campaign_id, fire_at, now, log)
        except Exception:
            if not release:
                raise
            with contextlib.suppress(Exception):  # else it lapses and is resumed
                self._occurrences.release_fanout(campaign_id, fire_at, self._holder)
            raise

    def _queue_all(
        self,
        planner: CampaignPlanner,
        campaign_id: str,
        fire_at: datetime,
        now: datetime,
        log: Any,
    ) -> int:
        campaign = planner.ops.campaigns.get(campaign_id)
        if campaign is None:  # removed by a reload while its fan-out was unfinished
            self.retry.call(
                lambda: self._occurrences.finish_fanout(
                    campaign_id, fire_at, self._holder, "campaign removed", now
                ),
                what="occurrence",
            )
            return 0
        renew_every = self._claim_for.total_seconds() / 3
        renew_at = time.monotonic() + renew_every
        late = now - fire_at
        added = groups = 0
        batch: list[OutboxItem] = []
        # No explicit GIL hand-offs here: the bot shortens the interpreter's switch interval
        # (bot.app.GIL_SWITCH_INTERVAL_S), so the event loop waits at most that long for it,
        # and this loop pays nothing while nobody waits. (A second thread writing batches
        # while this one renders gained nothing: SQLite gives the GIL back after every row.)
        for d in planner.iter_deliveries(campaign, fire_at):
            batch.append(
                OutboxItem(
                    key=d.key,
                    action=Say(room_conv(d.group.id), d.text),
                    not_before=d.send_at + late,
                    campaign_id=campaign_id,
                    group_id=d.group.id,
                    marketing=campaign.marketing,
                    priority=PRIORITY_PUSH,  # a member's reply goes before any push
                    account=d.account or self._account,  # the group's account
                )
            )
            if len(batch) == _BATCH:
                added += self._enqueue(batch)
                groups += len(batch)
                batch = []
                if time.monotonic() >= renew_at:
                    if not self._claim(campaign_id, fire_at):
                        log.warning("fan-out claim lost to another process; it carries on")
                        return added
                    renew_at = time.monotonic() + renew_every
        added += self._enqueue(batch)
        groups += len(batch)
        self.retry.call(
            lambda: self._occurrences.finish_fanout(
                campaign_id, fire_at, self._holder, f"{added} messages", now
            ),
            what="occurrence",
        )
        log.bind(groups=groups).info("campaign fired")
        return added

    def _enqueue(self, batch: list[OutboxItem]) -> int:
        # One transaction per batch: a fault rolls back the batch whole, so a retry re-inserts
        # it; a crash after some batches leaves them queued and the re-run adds the rest.
        return self.retry.call(lambda: self._outbox.enqueue(batch), what="outbox enqueue")
