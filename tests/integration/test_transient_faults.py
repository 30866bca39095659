"""Faults in the time loop are not data loss (issue 8 item 6), on a whole bot (simulator,
virtual clock, SQLite).

A "database is locked" while a welcome or a campaign occurrence is queued, or while the outbox
claims a send, is retried; one that outlasts the retries holds the work until the database
answers again. Nothing is recorded done, skipped or welcomed on a passing fault. A permanent
fault is recorded with its reason. Faults are injected by wrapping one method so that it raises
the first N times it is called for the work under test.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.outbox import OutboxItem
from bot.retry import RetryPolicy
from db.models import Membership, OutboxRow, ScheduleOccurrence
from scheduler.clock import SHANGHAI
from tests.support import ROOT, BotRig, bot_settings, copy_ops, make_rig

ROOM = "sz-nanshan-kjy"
FAST = RetryPolicy(attempts=3, first_wait=0, max_wait=0, jitter=0)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


class Flaky:
    """Wraps a method: raises ``fault`` on the first ``n`` calls that ``when`` selects, then
    behaves as the real method."""

    def __init__(
        self,
        real: Callable[..., Any],
        n: int,
        when: Callable[..., bool] = lambda *a, **k: True,
        fault: Exception | None = None,
    ) -> None:
        self.real, self.left, self.when = real, n, when
        self.fault = fault or sqlite3.OperationalError("database is locked")
        self.faults = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.left > 0 and self.when(*args, **kwargs):
            self.left -= 1
            self.faults += 1
            raise self.fault
        return self.real(*args, **kwargs)


def _keys_start(prefix: str) -> Callable[..., bool]:
    def when(items: list[OutboxItem], **_: Any) -> bool:
        return any(i.key.startswith(prefix) for i in items)

    return when


def _rig(tmp_path: Path, start: datetime, base: Path = ROOT) -> BotRig:
    settings = bot_settings(base, database={"url": f"sqlite:///{tmp_path}/q.db"})
    r = make_rig(settings, start)
    for service in (r.bot.scheduler, r.bot.welcome, r.bot.outbox):
        service.retry = FAST
    return r


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[BotRig]:
    r = _rig(tmp_path, at("2026-12-01T10:00"))
    r.gateway.add_contact("u1", "张三")
    yield r
    r.bot.close()


def _welcomes(r: BotRig) -> list[dict[str, Any]]:
    return [x for x in r.records() if x["to"] == f"room:{ROOM}" and "u1" in x["mentions"]]


def _welcomed_at(r: BotRig) -> list[datetime | None]:
    with Session(r.bot.engine) as s:
        stmt = select(Membership.welcomed_at).where(Membership.person_id == "u1")
        return list(s.exec(stmt))


def _occurrences(r: BotRig, campaign: str) -> list[tuple[str, str]]:
    with Session(r.bot.engine) as s:
        rows = s.exec(
            select(ScheduleOccurrence).where(ScheduleOccurrence.campaign_id == campaign)
        ).all()
    return [(o.status, o.reason) for o in rows]


def _lunch(r: BotRig) -> list[dict[str, Any]]:
    return [x for x in r.records() if "午餐福利" in x["text"]]


# --- welcomes --------------------------------------------------------------------------------


async def test_a_locked_database_while_welcoming_is_retried_and_the_welcome_goes_out(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(rig.bot.outbox.enqueue, n=FAST.attempts - 1, when=_keys_start("welcome:"))
    monkeypatch.setattr(rig.bot.outbox, "enqueue", flaky)
    rig.gateway.join(ROOM, ["u1"])
    await rig.advance_to(at("2026-12-01T10:01"))
    assert flaky.faults == FAST.attempts - 1
    assert len(_welcomes(rig)) == 1


async def test_a_lock_that_outlasts_the_retries_keeps_the_batch_until_it_can_be_welcomed(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(rig.bot.outbox.enqueue, n=FAST.attempts + 2, when=_keys_start("welcome:"))
    monkeypatch.setattr(rig.bot.outbox, "enqueue", flaky)
    rig.gateway.join(ROOM, ["u1"])
    await rig.advance_to(at("2026-12-01T10:00:10"))  # the batch window has just passed
    assert flaky.faults == FAST.attempts  # every retry locked out
    assert _welcomes(rig) == []
    assert _welcomed_at(rig) == [None]  # not closed: nobody was welcomed
    await rig.advance_to(at("2026-12-01T10:05"))  # the lock passes
    assert flaky.faults == FAST.attempts + 2
    assert len(_welcomes(rig)) == 1  # welcomed once, late rather than never
    assert _welcomed_at(rig) != [None]


async def test_a_welcome_that_cannot_be_rendered_closes_the_batch_with_its_reason(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Flaky(
        rig.bot.outbox.enqueue, n=1, when=_keys_start("welcome:"), fault=RuntimeError("bad")
    )
    monkeypatch.setattr(rig.bot.outbox, "enqueue", broken)
    rig.gateway.join(ROOM, ["u1"])
    await rig.advance_to(at("2026-12-01T10:05"))
    assert broken.faults == 1  # a permanent fault is not retried
    assert _welcomes(rig) == []
    assert _welcomed_at(rig) != [None]  # closed, not retried in a busy loop


# --- campaign occurrences --------------------------------------------------------------------


async def test_a_locked_database_during_an_occurrence_sends_it_rather_than_skipping_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _rig(tmp_path, at("2026-12-01T11:00"))
    flaky = Flaky(r.bot.outbox.enqueue, n=FAST.attempts + 2, when=_keys_start("lunch-deals:"))
    monkeypatch.setattr(r.bot.outbox, "enqueue", flaky)
    await r.advance_to(at("2026-12-01T11:30"))
    assert flaky.faults == FAST.attempts  # held after the retries, not recorded
    assert _occurrences(r, "lunch-deals") == []
    await r.advance_to(at("2026-12-01T12:30"))
    assert flaky.faults == FAST.attempts + 2
    assert _occurrences(r, "lunch-deals") == [("enqueued", f"{len(_lunch(r))} messages")]
    sent = _lunch(r)
    assert len(sent) >= 12
    assert len({x["to"] for x in sent}) == len(sent)  # each group once
    r.bot.close()


async def test_a_held_occurrence_holds_back_no_other_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _rig(tmp_path, at("2026-12-02T09:55"))  # a Wednesday: the cinema perk fires at 10:00
    flaky = Flaky(r.bot.outbox.enqueue, n=10**6, when=_keys_start("cinema-wednesday:"))
    monkeypatch.setattr(r.bot.outbox, "enqueue", flaky)
    await r.advance_to(at("2026-12-02T10:30"))
    assert flaky.faults > FAST.attempts  # tried again, with pauses in between
    assert _occurrences(r, "cinema-wednesday") == []  # neither skipped nor missed: still due
    await r.advance_to(at("2026-12-02T12:00"))  # lunch at 11:30 goes out meanwhile
    assert len(_lunch(r)) >= 12
    # Held past the grace period, the occurrence is missed, as if the bot had been down.
    assert _occurrences(r, "cinema-wednesday") == [("missed", "older than grace")]
    with Session(r.bot.engine) as s:
        stmt = select(OutboxRow).where(OutboxRow.campaign_id == "cinema-wednesday")
        assert s.exec(stmt).all() == []
    r.bot.close()


async def test_a_permanent_fault_in_an_occurrence_is_recorded_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _rig(tmp_path, at("2026-12-01T11:00"))
    broken = Flaky(
        r.bot.outbox.enqueue,
        n=1,
        when=_keys_start("lunch-deals:"),
        fault=RuntimeError("no such column"),
    )
    monkeypatch.setattr(r.bot.outbox, "enqueue", broken)
    await r.advance_to(at("2026-12-01T12:30"))
    assert broken.faults == 1
    [(status, reason)] = _occurrences(r, "lunch-deals")
    assert status == "skipped" and "RuntimeError: no such column" in reason
    assert _lunch(r) == []
    r.bot.close()


# --- outbox delivery -------------------------------------------------------------------------


async def test_a_locked_database_while_claiming_a_send_is_retried_and_sent_once(
    rig: BotRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(rig.bot.outbox.claim, n=FAST.attempts - 1)
    monkeypatch.setattr(rig.bot.outbox, "claim", flaky)
    rig.gateway.join(ROOM, ["u1"])
    await rig.advance_to(at("2026-12-01T10:01"))
    assert flaky.faults == FAST.attempts - 1
    assert len(_welcomes(rig)) == 1
    assert rig.bot.outbox.status_counts() == {"sent": 1}


# --- reloads ---------------------------------------------------------------------------------


async def test_a_reload_runs_off_the_loop_and_swaps_the_new_version_in_whole(
    tmp_path: Path,
) -> None:
    base = copy_ops(tmp_path)
    r = _rig(tmp_path, at("2026-12-01T11:00"), base)
    old = r.bot.planner()
    (base / "templates" / "meal.j2").write_text(
        "今日{{ data.meal }}：{{ merchants[0].name }}", encoding="utf-8"
    )
    ticks = 0
    seen: set[int] = set()

    async def meanwhile() -> None:  # stands for member replies and keep-alives
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1
            # Whatever the loop sees is one whole version: planner and ops always agree.
            assert r.bot.planner().ops is r.bot.ops
            seen.add(id(r.bot.planner()))

    other = asyncio.create_task(meanwhile())
    await asyncio.sleep(0)
    problems = await r.bot.reload_async()
    other.cancel()
    assert problems == []
    assert ticks >= 2  # the loop went on while the new version was read and indexed
    assert r.bot.planner() is not old and seen <= {id(old), id(r.bot.planner())}
    await r.advance_to(at("2026-12-01T12:00"))
    assert len([x for x in r.records() if x["text"].startswith("今日午餐：")]) >= 12
    r.bot.close()


async def test_a_broken_edit_reloaded_off_the_loop_keeps_the_last_good_version(
    tmp_path: Path,
) -> None:
    base = copy_ops(tmp_path)
    r = _rig(tmp_path, at("2026-12-01T11:00"), base)
    old = r.bot.planner()
    meals = base / "campaigns" / "meals.yaml"
    meals.write_text(
        meals.read_text(encoding="utf-8").replace('at: "11:30"', 'at: "25:61"'), encoding="utf-8"
    )
    problems = await r.bot.reload_async()
    assert problems and "meals.yaml:" in problems[0]
    assert r.bot.planner() is old
    await r.advance_to(at("2026-12-01T12:00"))
    assert len(_lunch(r)) >= 12
    r.bot.close()


# --- permanent faults of sends, as ops see them ------------------------------------------------


def test_outbox_status_shows_why_sends_failed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli
    from bot.config import OutboxSettings, QuietHours
    from bot.events import Say
    from bot.gateways.base import GatewayError
    from bot.outbox import Outbox
    from db.session import make_engine, upgrade
    from scheduler.clock import VirtualClock

    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///q.db}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = VirtualClock(at("2026-12-01T10:00"))
    outbox = Outbox(engine, OutboxSettings(jitter=0, max_attempts=1), QuietHours(), clock)
    outbox.enqueue([OutboxItem("k-refused", Say(f"room:{ROOM}", "你好"), clock.now())])

    class Refusing:
        bot_id = "bot"

        async def perform(self, action: object) -> None:
            raise GatewayError("room dissolved")

    asyncio.run(outbox.deliver_due(Refusing()))  # type: ignore[arg-type]
    engine.dispose()
    status = CliRunner().invoke(cli, ["outbox", "status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    assert "failed     1" in status.stdout
    assert "failed: 1 × GatewayError: room dissolved" in status.stdout
