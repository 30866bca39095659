"""Live scheduling of a large fan-out lets the rest of the bot run while it renders."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from bench.fanout import synthetic_ops
from bot.campaigns import CampaignPlanner
from bot.config import OutboxSettings, QuietHours
from bot.outbox import Outbox
from bot.scheduling import CampaignScheduler
from db.repositories import CheckpointRepo, OccurrenceRepo
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, VirtualClock


async def test_a_fan_out_to_many_groups_yields_to_the_event_loop_between_chunks(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = VirtualClock(datetime(2026, 12, 1, 11, 29, tzinfo=SHANGHAI))
    planner = CampaignPlanner(synthetic_ops(650), QuietHours())
    outbox = Outbox(engine, OutboxSettings(), QuietHours(), clock)
    checkpoints = CheckpointRepo(engine)
    checkpoints.set("campaigns", clock.now())
    scheduler = CampaignScheduler(
        lambda: planner, outbox, OccurrenceRepo(engine), checkpoints, clock, timedelta(hours=1)
    )
    clock.set(datetime(2026, 12, 1, 11, 31, tzinfo=SHANGHAI))

    ticks = 0

    async def meanwhile() -> None:  # stands for gateway events and keep-alives
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    other = asyncio.create_task(meanwhile())
    await asyncio.sleep(0)
    ticks = 0
    queued = await scheduler.run_due()
    other.cancel()
    assert queued == 650
    assert ticks >= 3  # 650 groups in chunks of 200: the loop ran between them
    assert outbox.status_counts() == {"pending": 650}
    engine.dispose()
