"""The outbox: idempotent enqueue, pacing, quiet hours, retries with backoff (SQLite and PG)."""

from __future__ import annotations

import bisect
import gzip
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.config import OutboxSettings, QuietHours
from bot.events import Action, Event, Invite, Say, room_conv
from bot.gateways.base import DeliveryUnknown, GatewayError
from bot.outbox import Outbox, OutboxItem, preview
from bot.pacing import Pacer
from db.models import OutboxRow
from scheduler.clock import SHANGHAI, VirtualClock

T0 = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
ROOM = room_conv("sz-nanshan-kjy")


class RecordingGateway:
    """Records what it was asked to do and when; fails the first ``failures`` calls."""

    bot_id = "bot"

    def __init__(self, clock: VirtualClock, failures: int = 0) -> None:
        self.clock = clock
        self.failures = failures
        self.calls = 0
        self.sent: list[tuple[datetime, Action]] = []

    async def perform(self, action: Action) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise GatewayError("platform busy")
        self.sent.append((self.clock.now(), action))

    async def room_qrcode(self, room_id: str) -> str:
        return f"qr:{room_id}"

    async def events(self) -> AsyncIterator[Event]:  # pragma: no cover - never consumed here
        return
        yield


def say(
    key: str, at: datetime = T0, *, marketing: bool = False, text: str = "午餐优惠"
) -> OutboxItem:
    return OutboxItem(
        key=key,
        action=Say(ROOM, text),
        not_before=at,
        marketing=marketing,
        campaign_id="lunch-deals",
        group_id="sz-nanshan-kjy",
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


def make_outbox(engine: Engine, clock: VirtualClock, **settings: object) -> Outbox:
    defaults: dict[str, object] = {"rate_per_minute": 6, "jitter": timedelta(0)}
    return Outbox(
        engine,
        OutboxSettings(**{**defaults, **settings}),  # type: ignore[arg-type]
        QuietHours(),
        clock,
    )


async def run_until_idle(
    outbox: Outbox, gateway: RecordingGateway, clock: VirtualClock, limit: int = 100
) -> None:
    """Step the virtual clock from one due instant to the next until nothing is pending."""
    for _ in range(limit):
        await outbox.deliver_due(gateway)
        due = outbox.next_due()
        if due is None:
            return
        clock.set(max(due, clock.now()))
    raise AssertionError("outbox never went idle")


def test_enqueue_same_key_twice_keeps_one_row(engine: Engine, clock: VirtualClock) -> None:
    outbox = make_outbox(engine, clock)
    assert outbox.enqueue([say("k1"), say("k1")]) == 1
    assert outbox.enqueue([say("k1", T0 + timedelta(hours=1)), say("k2")]) == 1
    assert make_outbox(engine, clock).enqueue([say("k2")]) == 0  # another process, same db
    assert outbox.status_counts() == {"pending": 2}


async def test_pacing_spaces_sends_by_rate(engine: Engine, clock: VirtualClock) -> None:
    outbox, gateway = make_outbox(engine, clock, rate_per_minute=6), RecordingGateway(clock)
    outbox.enqueue([say("a"), say("b"), say("c")])

    assert [r.key for r in await outbox.deliver_due(gateway)] == ["a"]
    assert await outbox.deliver_due(gateway) == []  # pacing: the next slot is 10 s away
    await run_until_idle(outbox, gateway, clock)

    assert [t for t, _ in gateway.sent] == [
        T0,
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]
    assert [r.key for r in outbox.audit()] == ["a", "b", "c"]


async def test_jitter_is_drawn_inside_the_interval(engine: Engine, clock: VirtualClock) -> None:
    outbox = make_outbox(engine, clock, rate_per_minute=6, jitter=timedelta(seconds=3), seed=7)
    gateway = RecordingGateway(clock)
    outbox.enqueue([say(f"k{i}") for i in range(30)])
    await run_until_idle(outbox, gateway, clock)
    times = [t for t, _ in gateway.sent]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    pacer = Pacer(6, timedelta(seconds=3))  # slots 10.5 s apart, a send 0-3 s into its slot
    assert all(7.5 <= g <= 13.5 for g in gaps) and len(set(gaps)) > 1
    # On average the interval, not the interval plus the mean jitter (11.5 s).
    assert (times[-1] - times[0]) / len(gaps) <= pacer.interval
    assert max(_sends_per_minute(times)) <= 6


def _sends_per_minute(times: list[datetime]) -> list[int]:
    """For each send, how many sends fall in the 60 seconds starting at it."""
    return [bisect.bisect_left(times, t + timedelta(seconds=60)) - i for i, t in enumerate(times)]


async def test_a_500_group_push_at_20_a_minute_takes_25_minutes_and_never_exceeds_the_rate(
    engine: Engine, clock: VirtualClock
) -> None:
    """Shipped settings (20/min, 3 s jitter): 500 ÷ 20 = 25 min, within 5 %."""
    outbox = make_outbox(engine, clock, rate_per_minute=20, jitter=timedelta(seconds=3), seed=1)
    gateway = RecordingGateway(clock)
    assert outbox.enqueue([say(f"lunch:{g:03d}", marketing=True) for g in range(500)]) == 500
    await run_until_idle(outbox, gateway, clock, limit=2000)

    times = [t for t, _ in gateway.sent]
    assert len(times) == 500 and times == sorted(times)
    assert max(_sends_per_minute(times)) <= 20  # every 60-second window, from real send times
    took = times[-1] - T0
    assert abs(took - timedelta(minutes=25)) <= timedelta(minutes=25) * 0.05, took


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=120),
    jitter=st.floats(min_value=0, max_value=30),
    late=st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=150),
    draws=st.randoms(use_true_random=False),
)
def test_pacing_never_exceeds_the_rate_in_any_minute_however_late_calls_are(
    rate: float, jitter: float, late: list[float], draws: Any
) -> None:
    """Calls happen at their gate or later (a busy loop); no 60 s window holds more than the cap."""
    pacer = Pacer(rate, timedelta(seconds=jitter))
    slot = due = last = None
    times: list[datetime] = []
    for delay in late:
        gate = pacer.gate(due, last) or T0
        call = gate + timedelta(seconds=delay if draws.random() < 0.5 else 0)
        times.append(call)
        slot, due = pacer.after_call(slot, call, draws.random())
        last = call
    assert max(_sends_per_minute(times)) <= pacer.cap
    assert all(b - a >= pacer.min_gap for a, b in itertools.pairwise(times))


def test_jitter_costs_the_rate_only_jitter_over_a_minute() -> None:
    """A backlog drains at rate × 60 / (60 + jitter): 2.5 % below 20/min with the shipped 3 s."""
    for rate, jitter in [(20, 3), (6, 3), (60, 0), (1, 10), (120, 1)]:
        pacer = Pacer(rate, timedelta(seconds=jitter))
        span = pacer.jitter_span.total_seconds()
        assert span == min(jitter, 30 / rate)  # inside the interval: at most half of it
        assert pacer.interval.total_seconds() == pytest.approx((60 + span) / rate, abs=1e-6)
    assert Pacer(20, timedelta(seconds=3)).interval == timedelta(seconds=3.075)


async def test_accounts_are_paced_independently(engine: Engine, clock: VirtualClock) -> None:
    outbox, gateway = make_outbox(engine, clock), RecordingGateway(clock)
    outbox.enqueue(
        [say("a1"), say("a2"), OutboxItem("b1", Invite("sz-nanshan-kjy", "u1"), T0, account="bot2")]
    )
    sent = await outbox.deliver_due(gateway)
    assert [r.key for r in sent] == ["a1", "b1"]
    assert sent[1].action == Invite("sz-nanshan-kjy", "u1")


async def test_marketing_waits_for_quiet_hours_to_end(engine: Engine) -> None:
    evening = datetime(2026, 12, 1, 21, 0, tzinfo=SHANGHAI)
    clock = VirtualClock(evening)
    outbox, gateway = make_outbox(engine, clock, rate_per_minute=60), RecordingGateway(clock)
    at = evening.replace(hour=22)
    outbox.enqueue([say("promo", at, marketing=True), say("reply", at)])

    assert outbox.next_due() == at
    clock.set(at)
    assert [r.key for r in await outbox.deliver_due(gateway)] == ["reply"]
    morning = datetime(2026, 12, 2, 8, 0, tzinfo=SHANGHAI)
    assert outbox.next_due() == morning
    clock.set(morning)
    assert [r.key for r in await outbox.deliver_due(gateway)] == ["promo"]


async def test_retry_with_backoff_then_success(engine: Engine, clock: VirtualClock) -> None:
    outbox = make_outbox(engine, clock, rate_per_minute=600, backoff=timedelta(seconds=5))
    gateway = RecordingGateway(clock, failures=2)
    outbox.enqueue([say("k")])

    assert await outbox.deliver_due(gateway) == []
    assert outbox.next_due() == T0 + timedelta(seconds=5)
    clock.set(T0 + timedelta(seconds=5))
    assert await outbox.deliver_due(gateway) == []
    assert outbox.next_due() == T0 + timedelta(seconds=15)  # 5 s, then 10 s
    clock.set(T0 + timedelta(seconds=15))
    [record] = await outbox.deliver_due(gateway)
    assert (record.key, record.status, record.attempts) == ("k", "sent", 3)
    assert record.sent_at == T0 + timedelta(seconds=15)


async def test_failed_after_max_attempts(engine: Engine, clock: VirtualClock) -> None:
    outbox = make_outbox(
        engine,
        clock,
        rate_per_minute=600,
        max_attempts=3,
        backoff=timedelta(seconds=5),
        max_backoff=timedelta(seconds=6),
    )
    gateway = RecordingGateway(clock, failures=99)
    outbox.enqueue([say("k")])
    await run_until_idle(outbox, gateway, clock)

    assert gateway.calls == 3
    assert clock.now() == T0 + timedelta(seconds=5 + 6)  # second backoff capped at 6 s
    record = outbox.get("k")
    assert record is not None and record.status == "failed"
    assert record.last_error is not None and "platform busy" in record.last_error
    assert outbox.next_due() is None and outbox.audit() == []


async def test_not_before_in_the_future_waits(engine: Engine, clock: VirtualClock) -> None:
    outbox, gateway = make_outbox(engine, clock), RecordingGateway(clock)
    outbox.enqueue([say("later", T0 + timedelta(minutes=5))])
    assert await outbox.deliver_due(gateway) == []
    assert outbox.next_due() == T0 + timedelta(minutes=5)


def test_preview_masks_message_text() -> None:
    assert preview("尊敬的客户您好，您的卡号") == "尊敬的客户您…(12 chars)"
    assert "卡号" not in preview("尊敬的客户您好，您的卡号")


_examples = itertools.count()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=6), max_size=5))
def test_rows_equal_distinct_keys(engine: Engine, batches: list[list[str]]) -> None:
    outbox = make_outbox(engine, VirtualClock(T0))
    run = f"ex{next(_examples)}-"  # the engine outlives examples: keep their keys apart
    before = sum(outbox.status_counts().values())
    added = sum(outbox.enqueue([say(run + k) for k in batch]) for batch in batches)
    distinct = {k for batch in batches for k in batch}
    assert added == len(distinct)
    assert sum(outbox.status_counts().values()) - before == len(distinct)


class FlakyConnection(RecordingGateway):
    """A gateway whose connection drops: while down it says so and must not be called."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.up = False

    def ready(self) -> bool:
        return self.up

    async def perform(self, action: Action) -> None:
        assert self.up, "the outbox called a gateway that said it was down"
        await super().perform(action)


async def test_sends_wait_while_the_gateway_is_down_without_spending_retries(
    engine: Engine, clock: VirtualClock
) -> None:
    outbox = make_outbox(engine, clock, max_attempts=1)
    outbox.enqueue([say("a"), say("b")])
    gateway = FlakyConnection(clock)
    for _ in range(30):  # half a minute of the connection being down
        assert await outbox.deliver_due(gateway) == []
        due = outbox.next_due()
        assert due is not None and due > clock.now()
        clock.set(due)
    gateway.up = True
    sent = await outbox.deliver_due(gateway)
    clock.set(clock.now() + timedelta(seconds=10))
    sent += await outbox.deliver_due(gateway)
    assert [r.key for r in sent] == ["a", "b"]
    assert outbox.status_counts() == {"sent": 2}


class CutOffMidCall(RecordingGateway):
    """The platform took the request, then the connection broke before it answered."""

    async def perform(self, action: Action) -> None:
        self.calls += 1
        if self.calls == 1:
            raise DeliveryUnknown("say failed: StreamTerminatedError: Connection lost")
        self.sent.append((self.clock.now(), action))


async def test_a_send_of_unknown_fate_is_uncertain_and_never_retried(
    engine: Engine, clock: VirtualClock
) -> None:
    outbox = make_outbox(engine, clock)
    outbox.enqueue([say("a"), say("b")])
    gateway = CutOffMidCall(clock)
    for _ in range(5):
        await outbox.deliver_due(gateway)
        clock.set(clock.now() + timedelta(minutes=1))
    assert [a for _, a in gateway.sent] == [Say(ROOM, "午餐优惠")]
    record = outbox.get("a")
    assert record is not None and (record.status, record.attempts) == ("uncertain", 1)
    assert outbox.status_counts() == {"sent": 1, "uncertain": 1}


async def test_a_push_held_past_the_grace_period_by_an_outage_expires_unsent(
    engine: Engine, clock: VirtualClock
) -> None:
    outbox = make_outbox(engine, clock, grace=timedelta(hours=1), rate_per_minute=600)
    outbox.enqueue([say("lunch", marketing=True), say("welcome")])
    gateway = FlakyConnection(clock)
    assert await outbox.deliver_due(gateway) == []
    clock.set(T0 + timedelta(hours=2))  # the connection was down over lunch
    gateway.up = True
    sent = await outbox.deliver_due(gateway)
    assert [r.key for r in sent] == ["welcome"]
    lunch = outbox.get("lunch")
    assert lunch is not None and lunch.status == "failed" and "expired" in (lunch.last_error or "")


async def test_what_caused_a_send_commits_with_it_or_not_at_all(
    engine: Engine, clock: VirtualClock
) -> None:
    outbox = make_outbox(engine, clock)

    def fails(_session: object) -> None:
        raise RuntimeError("crash between queueing and marking")

    with pytest.raises(RuntimeError):
        outbox.enqueue([say("welcome")], also=fails)
    assert outbox.get("welcome") is None  # rolled back together
    seen: list[object] = []
    assert outbox.enqueue([say("welcome")], also=seen.append) == 1
    assert outbox.get("welcome") is not None and len(seen) == 1


def _statements(engine: Engine, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SELECTs and UPDATEs ``run`` sends to the database, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, stmt: str, params: Any, _ctx: object, _m: bool) -> None:
        if stmt.lstrip().upper().startswith(("SELECT", "UPDATE")):
            seen.append((stmt, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def _plan(engine: Engine, stmt: str, params: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all()
            return "\n".join(str(r[-1]) for r in rows)
        # A tiny table makes any scan cheap: forbid scans so only a usable index can be chosen.
        conn.exec_driver_sql("SET enable_seqscan = off")
        return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + stmt, params).all())


def test_next_due_and_a_claim_read_the_outbox_only_through_indexes(
    engine: Engine, clock: VirtualClock
) -> None:
    """No full scan of the outbox: history (sent rows) never enters the cost."""
    outbox = make_outbox(engine, clock)
    outbox.enqueue([say("a"), say("b", marketing=True)])
    statements = _statements(engine, outbox.next_due) + _statements(
        engine, lambda: outbox.claim("bot")
    )
    outbox_reads = _on_outbox(statements)
    assert len(outbox_reads) >= 2
    for stmt, params in outbox_reads:
        plan = _plan(engine, stmt, params)
        assert "SCAN outbox\n" not in plan + "\n" and "Seq Scan on outbox " not in plan, plan
        assert any(i in plan for i in ("ix_outbox_pending", "PRIMARY KEY", "outbox_pkey")), plan


def _on_outbox(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The statements that read or update the outbox table (not outbox_pacing)."""
    return [(s, p) for s, p in statements if re.search(r"\b(FROM|UPDATE) outbox\b(?!_)", s)]


_PENDING_PATHS = {"ix_outbox_pending_due", "ix_outbox_pending_claim", "outbox_pkey", "PRIMARY KEY"}


def test_claims_keep_to_the_pending_indexes_when_statistics_saw_only_sent_rows(
    engine: Engine, clock: VirtualClock
) -> None:
    """A long audit log analysed while nothing was pending, then a push: the usual state.

    PostgreSQL then costs any index holding pending rows as a one-row lookup; with an index on
    the status over the whole table it walked every pending row through it (next_due) and even
    preferred it to the primary key (the claim's update). Only the pending indexes and the
    primary key may serve next_due and a claim.
    """
    past = T0 - timedelta(days=30)
    history = [
        {
            "key": f"hist:{i}",
            "account": "bot",
            "action": "say",
            "conversation": ROOM,
            "text": "午餐",
            "mentions": [],
            "marketing": bool(i % 2),
            "not_before": past,
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": past,
            "last_attempt_at": past,
            "created_at": past,
            "sent_at": past + timedelta(seconds=i),
        }
        for i in range(3000)
    ]
    with engine.begin() as conn:
        conn.execute(OutboxRow.__table__.insert(), history)  # type: ignore[attr-defined]
        conn.exec_driver_sql("ANALYZE")
    outbox = make_outbox(engine, clock)
    outbox.enqueue([say(f"push-{i}") for i in range(200)] + [say("m", marketing=True)])
    due = _on_outbox(_statements(engine, outbox.next_due))
    claim = _on_outbox(_statements(engine, lambda: outbox.claim("bot")))
    assert len(due) == 1 and len(claim) >= 2  # the claim's read, its lock and/or update
    # next_due reads the earliest entry of the index in due order, not every pending row.
    assert set(re.findall(r"ix_outbox_\w+", _plan(engine, *due[0]))) == {"ix_outbox_pending_due"}
    for stmt, params in due + claim:
        plan = _plan(engine, stmt, params)
        used = set(re.findall(r"ix_outbox_\w+|outbox_pkey|PRIMARY KEY", plan))
        assert used and used <= _PENDING_PATHS, plan
        assert not _whole_scans(engine, plan), plan


def _whole_scans(engine: Engine, plan: str) -> list[str]:
    """Plan nodes that read all of the outbox or all of one of its indexes (no search key)."""
    if engine.dialect.name == "sqlite":  # SEARCH has a key, SCAN has none
        return [line for line in plan.splitlines() if re.match(r"SCAN outbox\b(?!_)", line)]
    nodes = plan.split("->")
    scans = [n for n in nodes if re.search(r"Scan .*\bon outbox\b(?!_)", n)]
    return [n for n in scans if "Index Cond" not in n and "Recheck Cond" not in n]


async def test_prune_archives_then_removes_old_sent_rows_only(
    engine: Engine, clock: VirtualClock, tmp_path: Path
) -> None:
    outbox, gateway = make_outbox(engine, clock, rate_per_minute=600), RecordingGateway(clock)
    outbox.enqueue([say("old-1"), say("old-2")])
    await run_until_idle(outbox, gateway, clock)
    clock.set(T0 + timedelta(days=200))
    outbox.enqueue([say("new"), say("waiting", T0 + timedelta(days=300))])
    await outbox.deliver_due(gateway)
    cutoff = T0 + timedelta(days=20)

    dry = outbox.prune(cutoff, dry_run=True)
    assert (dry.rows, outbox.status_counts()) == (2, {"sent": 3, "pending": 1})
    archive = tmp_path / "outbox-archive.jsonl.gz"
    report = outbox.prune(cutoff, archive)
    assert report.rows == 2 and report.oldest == T0 and report.archive == archive
    assert outbox.status_counts() == {"sent": 1, "pending": 1}
    with gzip.open(archive, "rt", encoding="utf-8") as f:
        archived = [json.loads(line) for line in f]
    assert [r["key"] for r in archived] == ["old-1", "old-2"]
    assert archived[0]["status"] == "sent" and archived[0]["text"] == "午餐优惠"
    assert outbox.prune(cutoff).rows == 0
