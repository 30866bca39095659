"""Faults during an event, on a whole bot (simulator, virtual clock, SQLite).

Issue 8 item 6 for events: a "database is locked" is retried and the event's effect happens
exactly once; a fault that outlasts the retries keeps the event (and those after it, in order)
until the database answers again; a permanent fault is logged and the next event goes on.
Faults are injected by wrapping one repository method so that it raises the first N times.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from sqlmodel import Session, func, select

from bot.events import MemberLeft
from bot.retry import RetryPolicy
from db.models import Membership
from db.repositories import GroupRepo
from scheduler.clock import SHANGHAI
from tests.support import ROOT, BotRig, bot_settings, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
KJY = (22.5405, 113.9345)  # GCJ-02, 深圳南山科技园
ROOM = "sz-nanshan-kjy"
FAST = RetryPolicy(attempts=3, first_wait=0, max_wait=0, jitter=0)


class Flaky:
    """Wraps a repository method: raises ``fault`` on the first ``n`` calls that ``when``
    selects, then behaves as the real method."""

    def __init__(
        self,
        real: Callable[..., Any],
        n: int,
        fault: Exception | None = None,
        when: Callable[..., bool] = lambda *args: True,
    ) -> None:
        self.real, self.left, self.when = real, n, when
        self.fault = fault or sqlite3.OperationalError("database is locked")
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.left > 0 and self.when(*args):
            self.left -= 1
            raise self.fault
        return self.real(*args)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[BotRig]:
    r = make_rig(bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"}), T0)
    r.bot.dispatcher.ctx.retry = FAST
    for cid, name in (("u1", "张三"), ("u2", "李四")):
        r.gateway.add_contact(cid, name)
    yield r
    r.bot.close()


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    yield lines
    logger.remove(sink)


def _memberships(r: BotRig, person: str) -> int:
    with Session(r.bot.engine) as s:
        stmt = select(func.count()).where(Membership.person_id == person)
        return int(s.exec(stmt).one())


def _texts_to(r: BotRig, contact: str) -> list[str]:
    return [x["text"] for x in r.records() if x["to"] == f"contact:{contact}"]


async def test_a_locked_database_during_a_join_is_retried_and_the_join_counts_once(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = GroupRepo(rig.bot.engine)
    before = counts.member_count(ROOM)
    flaky = Flaky(rig.bot.memberships.join, n=FAST.attempts - 1)
    monkeypatch.setattr(rig.bot.memberships, "join", flaky)
    rig.gateway.join(ROOM, ["u1"])
    await rig.advance_to(T0 + timedelta(minutes=10))
    assert flaky.calls == FAST.attempts  # locked twice, then written
    assert _memberships(rig, "u1") == 1
    assert counts.member_count(ROOM) == before + 1 == rig.bot.member_counts.get(ROOM, 0)
    welcomes = [x for x in rig.records() if x["to"] == f"room:{ROOM}" and "u1" in x["mentions"]]
    assert len(welcomes) == 1  # welcomed, and only once
    assert rig.bot.dispatcher.deferred == 0


async def test_a_lock_that_outlasts_the_retries_keeps_the_event_and_those_after_it_in_order(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch, logs: list[str]
) -> None:
    flaky = Flaky(rig.bot.seats.groups_of, n=FAST.attempts + 1)
    monkeypatch.setattr(rig.bot.seats, "groups_of", flaky)
    rig.gateway.share_location("u1", *KJY)
    rig.gateway.share_location("u2", *KJY)
    for event in rig.gateway.pending_events():
        await rig.bot.handle(event)
    assert rig.bot.dispatcher.deferred == 2  # u1's location waits, u2's waits behind it
    assert any("event deferred" in line for line in logs)
    assert not any("event rejected" in line for line in logs)

    await rig.advance_to(T0 + timedelta(minutes=2))  # the database answers again
    assert rig.bot.dispatcher.deferred == 0
    offers = [x for x in rig.records() if x["text"].startswith("为您找到附近")]
    assert [x["to"] for x in offers] == ["contact:u1", "contact:u2"]  # each once, in order


async def test_a_leave_resumed_after_a_long_lock_lowers_the_count_once_per_member(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = GroupRepo(rig.bot.engine)
    before = counts.member_count(ROOM)
    assert before is not None
    # m-1 and m-2 were seeded from the directory (never seen joining): a second leave of
    # either would lower the count again, so the resumed event must not repeat m-1.
    flaky = Flaky(
        rig.bot.memberships.leave,
        n=FAST.attempts + 1,
        when=lambda group, member, at: member == "m-2",
    )
    monkeypatch.setattr(rig.bot.memberships, "leave", flaky)
    await rig.bot.handle(MemberLeft(T0, ROOM, ("m-1", "m-2")))
    assert rig.bot.dispatcher.deferred == 1
    assert counts.member_count(ROOM) == before - 1
    await rig.advance_to(T0 + timedelta(minutes=2))
    assert rig.bot.dispatcher.deferred == 0
    assert counts.member_count(ROOM) == before - 2 == rig.bot.member_counts.get(ROOM, 0)


async def test_a_permanent_fault_is_logged_and_the_next_event_is_answered(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch, logs: list[str]
) -> None:
    broken = Flaky(rig.bot.seats.groups_of, n=1, fault=RuntimeError("broken for wxid_u1"))
    monkeypatch.setattr(rig.bot.seats, "groups_of", broken)
    rig.gateway.share_location("u1", *KJY)
    rig.gateway.share_location("u2", *KJY)
    await rig.advance_to(T0 + timedelta(minutes=1))
    assert broken.calls == 2  # not retried: a permanent fault
    assert _texts_to(rig, "u1") == []
    assert len(_texts_to(rig, "u2")) == 1
    rejected = [line for line in logs if "event rejected" in line]
    assert len(rejected) == 1 and "RuntimeError" in rejected[0]
    assert rig.bot.dispatcher.deferred == 0
