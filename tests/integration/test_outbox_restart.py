"""A restart never loses a pending send and never sends one twice (SQLite file and PostgreSQL).

"Process A" and "process B" are separate engines and outboxes on the same database; the last
test uses a real child process killed with SIGKILL in the middle of a slow send.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import OutboxSettings, QuietHours
from bot.events import Action, Event, Say, room_conv
from bot.outbox import Outbox, OutboxItem
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, RealClock, VirtualClock

T0 = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
KEYS = [f"lunch-deals:sz-nanshan-kjy:{i:02d}" for i in range(10)]
SETTINGS = OutboxSettings(rate_per_minute=60, jitter=timedelta(0))
REPO = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """The process dying: not an Exception, so nothing on the way up handles it."""


class Gateway:
    """Records every action the platform received; can die during the n-th send."""

    bot_id = "bot"

    def __init__(self, clock: VirtualClock, crash_on: int | None = None) -> None:
        self.clock, self.crash_on = clock, crash_on
        self.received: list[str] = []

    async def perform(self, action: Action) -> None:
        assert isinstance(action, Say)
        self.received.append(action.text)  # the platform got it ...
        if len(self.received) == self.crash_on:
            raise Crash  # ... and we die before recording that it was sent

    async def room_qrcode(self, room_id: str) -> str:
        return f"qr:{room_id}"

    async def events(self) -> AsyncIterator[Event]:  # pragma: no cover
        return
        yield


def items(not_before: datetime = T0) -> list[OutboxItem]:
    return [
        OutboxItem(
            key=k,
            action=Say(room_conv("sz-nanshan-kjy"), k),
            not_before=not_before,
            campaign_id="lunch-deals",
            group_id="sz-nanshan-kjy",
            marketing=True,
        )
        for k in KEYS
    ]


def start_process(url: str, clock: VirtualClock) -> Outbox:
    """What the app does at start-up: migrate, build the outbox, recover, (re)enqueue."""
    upgrade(url)
    return Outbox(make_engine(url), SETTINGS, QuietHours(), clock)


async def deliver(outbox: Outbox, gateway: Gateway, clock: VirtualClock, sends: int) -> None:
    """Run the delivery loop until ``sends`` sends were attempted or nothing is left."""
    while len(gateway.received) < sends:
        await outbox.deliver_due(gateway)
        due = outbox.next_due()
        if due is None:
            return
        clock.set(max(due, clock.now()))


async def test_crash_in_flight_is_uncertain_and_not_resent(db_url: str) -> None:
    clock_a = VirtualClock(T0)
    a = start_process(db_url, clock_a)
    assert a.enqueue(items()) == 10
    gateway_a = Gateway(clock_a, crash_on=4)
    with pytest.raises(Crash):
        await deliver(a, gateway_a, clock_a, sends=10)

    clock_b = VirtualClock(clock_a.now() + timedelta(minutes=5))
    b = start_process(db_url, clock_b)
    assert b.recover() == [KEYS[3]]
    assert b.enqueue(items()) == 0  # the restarted scheduler re-enqueues: nothing new
    gateway_b = Gateway(clock_b)
    await deliver(b, gateway_b, clock_b, sends=10)

    assert Counter(gateway_a.received + gateway_b.received) == Counter(KEYS)
    assert KEYS[3] not in gateway_b.received
    in_flight = b.get(KEYS[3])
    assert in_flight is not None and in_flight.status == "uncertain"
    assert [r.key for r in b.audit()] == KEYS[:3] + KEYS[4:]


async def test_stop_between_sends_resumes_where_it_left_off(db_url: str) -> None:
    clock_a = VirtualClock(T0)
    a = start_process(db_url, clock_a)
    a.enqueue(items())
    gateway_a = Gateway(clock_a)
    await deliver(a, gateway_a, clock_a, sends=3)

    clock_b = VirtualClock(clock_a.now())
    b = start_process(db_url, clock_b)
    assert b.recover() == []
    b.enqueue(items())
    gateway_b = Gateway(clock_b)
    await deliver(b, gateway_b, clock_b, sends=10)

    assert gateway_a.received == KEYS[:3] and gateway_b.received == KEYS[3:]
    sent_at = [r.sent_at for r in b.audit()]
    assert sent_at[3] is not None and sent_at[2] is not None
    assert sent_at[3] - sent_at[2] >= timedelta(seconds=1)  # pacing survives the restart


CHILD = textwrap.dedent("""
    import asyncio, os, sys
    from datetime import timedelta
    from bot.config import OutboxSettings, QuietHours
    from bot.outbox import Outbox
    from db.session import make_engine
    from scheduler.clock import RealClock

    url, log_path = sys.argv[1], sys.argv[2]

    class SlowGateway:
        bot_id = "bot"
        def __init__(self):
            self.log = open(log_path, "a")
        async def perform(self, action):
            self.log.write(action.text + "\\n")
            self.log.flush()
            os.fsync(self.log.fileno())
            await asyncio.sleep(0.3)

    async def main():
        clock = RealClock()
        outbox = Outbox(make_engine(url), OutboxSettings(rate_per_minute=6000,
                        jitter=timedelta(0)), QuietHours(enabled=False), clock)
        outbox.recover()
        gateway = SlowGateway()
        while (due := outbox.next_due()) is not None:
            await clock.sleep_until(due, asyncio.Event())
            await outbox.deliver_due(gateway)

    asyncio.run(main())
""")


@pytest.mark.slow
async def test_sigkill_mid_send_never_sends_twice(db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    parent = Outbox(make_engine(db_url), SETTINGS, QuietHours(enabled=False), RealClock())
    parent.enqueue(items(RealClock().now()))
    log = tmp_path / "platform.log"
    log.touch()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(log)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 4:
            if child.poll() is not None or time.monotonic() > deadline:
                err = child.stderr.read().decode() if child.stderr else ""
                pytest.fail(f"child did not send: {err[-2000:]}")
            await asyncio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.stderr is not None
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    received_a = log.read_text().splitlines()

    clock_b = VirtualClock(RealClock().now() + timedelta(minutes=1))
    b = Outbox(make_engine(db_url), SETTINGS, QuietHours(enabled=False), clock_b)
    uncertain = set(b.recover())
    gateway_b = Gateway(clock_b)
    await deliver(b, gateway_b, clock_b, sends=10)

    received = received_a + gateway_b.received
    assert max(Counter(received).values()) == 1, "a message went out twice"
    assert len(uncertain) <= 1 and not uncertain & set(gateway_b.received)
    assert set(received) | uncertain == set(KEYS), "a pending send was lost"
    assert {r.key for r in b.audit()} | uncertain == set(KEYS)
    assert {r.key for r in b.audit()} <= set(received)
