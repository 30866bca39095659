"""The dispatcher as a pipeline: order, consumption, `always` handlers, faults and deferral.

Plain handlers that record what they saw, run by the real :class:`Dispatcher`; no bot, no
database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import httpx
import pytest
import sqlalchemy.exc
from loguru import logger

from bot.dispatcher import Dispatcher
from bot.events import Event, MemberJoined, MessageReceived, Person
from bot.handlers import Handler, HandlerContext
from bot.retry import RetryPolicy, fault_reason, is_transient
from scheduler.clock import SHANGHAI, VirtualClock

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NO_WAIT = RetryPolicy(attempts=3, first_wait=0, max_wait=0, jitter=0)
LOCKED = sqlite3.OperationalError("database is locked")


@dataclass
class Recorder:
    """A handler that notes every event it handles, consumes when told, fails when told."""

    name: str
    consumes: bool = False
    always: bool = False
    only: type | None = None
    faults: list[BaseException] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        return self.only is None or isinstance(event, self.only)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        if self.faults:
            raise self.faults.pop(0)
        self.seen.append(_label(event))
        return self.consumes


def _label(event: Event) -> str:
    return event.text if isinstance(event, MessageReceived) else type(event).__name__


def _msg(text: str, sender: str = "u1") -> MessageReceived:
    return MessageReceived(NOW, Person(sender, sender), text)


def _dispatcher(*handlers: Recorder, clock: VirtualClock | None = None) -> Dispatcher:
    ctx = HandlerContext(
        planner=cast(Any, lambda: None),
        outbox=cast(Any, None),
        clock=clock or VirtualClock(NOW),
        bot_id="bot",
        retry=NO_WAIT,
    )
    return Dispatcher(cast(list[Handler], list(handlers)), ctx)


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    yield lines
    logger.remove(sink)


async def test_a_consuming_handler_stops_the_event_and_always_handlers_still_run() -> None:
    first = Recorder("first")
    taker = Recorder("taker", consumes=True)
    ledger = Recorder("ledger", always=True)
    never = Recorder("never")
    d = _dispatcher(first, taker, ledger, never)
    await d.dispatch(_msg("hello"))
    assert first.seen == ["hello"] and taker.seen == ["hello"]
    assert ledger.seen == ["hello"]  # bookkeeping sees consumed events too
    assert never.seen == []


async def test_filters_decide_which_handlers_run() -> None:
    joins = Recorder("joins", only=MemberJoined, consumes=True)
    texts = Recorder("texts", only=MessageReceived, consumes=True)
    d = _dispatcher(joins, texts)
    await d.dispatch(MemberJoined(NOW, "room", (Person("u1"),)))
    await d.dispatch(_msg("hi"))
    assert joins.seen == ["MemberJoined"] and texts.seen == ["hi"]


async def test_the_bots_own_messages_reach_no_handler() -> None:
    seen = Recorder("seen")
    await _dispatcher(seen).dispatch(_msg("echo", sender="bot"))
    assert seen.seen == []


async def test_a_failing_handler_is_logged_with_a_masked_reason_and_the_next_event_goes_on(
    logs: list[str],
) -> None:
    broken = Recorder("broken", faults=[ValueError("no row for 13812345678")])
    after = Recorder("after")
    ledger = Recorder("ledger", always=True)
    d = _dispatcher(broken, after, ledger)
    await d.dispatch(_msg("one"))
    await d.dispatch(_msg("two"))
    assert after.seen == ["two"]  # the failed event stopped at the fault...
    assert ledger.seen == ["one", "two"]  # ...but bookkeeping still saw it
    assert broken.seen == ["two"]
    rejected = [line for line in logs if "event rejected" in line]
    assert len(rejected) == 1 and "ValueError" in rejected[0]
    assert "13812345678" not in rejected[0]
    assert d.deferred == 0


async def test_a_transient_fault_a_handler_raises_itself_defers_the_event() -> None:
    flaky = Recorder("flaky", faults=[LOCKED])
    d = _dispatcher(flaky)
    await d.dispatch(_msg("one"))
    assert d.deferred == 1 and flaky.seen == []  # kept, not dropped and not marked done


async def test_a_deferred_event_resumes_at_the_failed_handler_and_later_events_keep_order(
    logs: list[str],
) -> None:
    clock = VirtualClock(NOW)
    before = Recorder("before")
    flaky = Recorder("flaky", faults=[LOCKED])
    after = Recorder("after")
    d = _dispatcher(before, flaky, after, clock=clock)
    await d.dispatch(_msg("one"))
    await d.dispatch(_msg("two"))  # waits behind "one": a leave must not overtake its join
    assert d.deferred == 2 and after.seen == []
    assert any("event deferred" in line for line in logs)
    retry_at = d.next_retry()
    assert retry_at is not None and retry_at > NOW

    await d.retry_deferred()  # the pause is not over: nothing runs yet
    assert d.deferred == 2
    clock.set(retry_at)
    await d.retry_deferred()
    assert d.deferred == 0 and d.next_retry() is None
    assert before.seen == ["one", "two"]  # "one" was not run again through `before`
    assert flaky.seen == ["one", "two"] and after.seen == ["one", "two"]


async def test_repeated_transient_faults_back_off_longer_each_time() -> None:
    clock = VirtualClock(NOW)
    flaky = Recorder("flaky", faults=[LOCKED, LOCKED, LOCKED])
    d = _dispatcher(flaky, clock=clock)
    await d.dispatch(_msg("one"))
    pauses = []
    for _ in range(2):
        due = d.next_retry()
        assert due is not None
        pauses.append(due - clock.now())
        clock.set(due)
        await d.retry_deferred()
    assert pauses[1] > pauses[0]
    clock.set(d.next_retry() or NOW)
    await d.retry_deferred()
    assert flaky.seen == ["one"] and d.deferred == 0


async def test_ctx_db_retries_transient_faults_and_not_permanent_ones() -> None:
    ctx = _dispatcher().ctx
    calls: list[int] = []

    def locked_twice() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise LOCKED
        return "done"

    assert await ctx.db(locked_twice) == "done" and len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise ValueError("bad")

    calls.clear()
    with pytest.raises(ValueError):
        await ctx.db(broken)
    assert len(calls) == 1


def test_handler_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        _dispatcher(Recorder("a"), Recorder("a"))


@pytest.mark.parametrize(
    ("fault", "transient"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("database is busy"), True),
        (sqlite3.OperationalError("no such table: outbox"), False),
        (sqlalchemy.exc.OperationalError("UPDATE x", {}, LOCKED), True),
        (sqlalchemy.exc.IntegrityError("INSERT x", {}, sqlite3.IntegrityError("UNIQUE")), False),
        (
            sqlalchemy.exc.DBAPIError(
                "SELECT 1", {}, Exception("gone"), connection_invalidated=True
            ),
            True,
        ),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (httpx.ReadTimeout("slow"), True),
        (ValueError("bad input"), False),
        (KeyError("x"), False),
    ],
)
def test_transient_faults_are_told_from_permanent_ones(fault: Exception, transient: bool) -> None:
    assert is_transient(fault) is transient


def test_a_fault_reason_is_one_masked_line() -> None:
    reason = fault_reason(RuntimeError("card 6222021234567890128\nphone 13812345678"))
    assert reason.startswith("RuntimeError: ") and "\n" not in reason
    assert "13812345678" not in reason and "6222021234567890128" not in reason


def test_a_policy_gives_up_after_its_attempts_with_the_last_fault() -> None:
    calls: list[int] = []

    def always_locked() -> None:
        calls.append(1)
        raise LOCKED

    with pytest.raises(sqlite3.OperationalError):
        NO_WAIT.call(always_locked, what="test")
    assert len(calls) == NO_WAIT.attempts


def test_a_policy_needs_one_attempt_at_least() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize("kind", ["link_card", "contact_card", "image", "image_qr"])
async def test_a_card_or_image_is_never_read_as_a_command(tmp_path, kind) -> None:  # noqa: ANN001
    """A link card whose URL read "我要进群" started the join flow (its text is the URL). Only
    handlers marked ``non_text`` (moderation) see such messages now; the same words as text
    still work."""
    from pathlib import Path

    from tests.support import bot_settings, copy_ops, make_rig

    start = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
    rig = make_rig(bot_settings(copy_ops(Path(tmp_path))), start)
    rig.gateway.add_contact("u1", "张三")
    rig.gateway.say("u1", "https://example.com/我要进群", kind=kind)
    await rig.advance_to(datetime(2026, 12, 1, 10, 1, tzinfo=SHANGHAI))
    assert rig.records() == []
    rig.gateway.say("u1", "我要进群")
    await rig.advance_to(datetime(2026, 12, 1, 10, 2, tzinfo=SHANGHAI))
    assert [r["to"] for r in rig.records()] == ["contact:u1"]
    rig.bot.close()
