"""Outbox priorities: a member's reply is never stuck behind a push (DESIGN.md, core loop 6).

Before priorities, claims went by ``not_before`` alone, so a private reply queued during a
500-group push waited behind every push row already due for the same account: 25 minutes at
20 a minute. Also: the fan-out's plain-tuple insert stores exactly what the ORM path stored.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from bot.config import OutboxSettings, QuietHours
from bot.events import Invite, Say, contact_conv, room_conv
from bot.outbox import _ROW_COLUMNS, PRIORITY_PUSH, Outbox, OutboxItem, _row_values
from db.models import OutboxRow
from db.repositories import insert_ignore_many
from scheduler.clock import SHANGHAI, VirtualClock
from tests.unit.test_outbox import RecordingGateway

T0 = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
RATE = 20
SLOT = timedelta(seconds=60 / RATE)


def push(group: int, at: datetime = T0, *, marketing: bool = True) -> OutboxItem:
    gid = f"g{group:03d}"
    return OutboxItem(
        key=f"lunch-deals:{gid}:{T0.isoformat()}",
        action=Say(room_conv(gid), "午餐优惠"),
        not_before=at,
        campaign_id="lunch-deals",
        group_id=gid,
        marketing=marketing,
        priority=PRIORITY_PUSH if not marketing else None,
    )


def reply(key: str, at: datetime) -> OutboxItem:
    text = "附近的群：…"
    return OutboxItem(key=key, action=Say(contact_conv("wxid_member"), text), not_before=at)


async def _step(outbox: Outbox, gateway: RecordingGateway, clock: VirtualClock) -> None:
    """One pass of the time loop: send what is due, then move the clock to the next due."""
    await outbox.deliver_due(gateway)
    due = outbox.next_due()
    assert due is not None
    clock.set(max(due, clock.now()))


@pytest.mark.parametrize("marketing", [True, False], ids=["marketing", "non-marketing push"])
async def test_a_reply_during_a_500_group_push_goes_within_one_pacing_slot(
    engine: Engine, marketing: bool
) -> None:
    clock = VirtualClock(T0)
    settings_ = OutboxSettings(rate_per_minute=RATE, jitter=timedelta(seconds=1), seed=3)
    outbox = Outbox(engine, settings_, QuietHours(), clock)
    gateway = RecordingGateway(clock)
    # The whole push is due at once (the worst case: a fan-out that ran late).
    assert outbox.enqueue([push(g, marketing=marketing) for g in range(500)]) == 500
    for _ in range(30):
        await _step(outbox, gateway, clock)
    asked_at = clock.now()
    outbox.enqueue([reply("reply:1", asked_at)])
    for _ in range(3):
        await _step(outbox, gateway, clock)

    times = [t for t, _ in gateway.sent]
    private = [t for t, a in gateway.sent if isinstance(a, Say) and a.to.startswith("contact:")]
    assert len(private) == 1
    # Sent at the account's next slot: at most one slot (plus its jitter) after it was queued.
    assert private[0] - asked_at <= SLOT + settings_.jitter, private[0] - asked_at
    # And the account's rate still caps everything, the reply included.
    assert all(
        bisect.bisect_left(times, t + timedelta(seconds=60)) - i <= RATE
        for i, t in enumerate(times)
    )


async def test_pushes_keep_their_order_among_themselves_after_a_reply(engine: Engine) -> None:
    clock = VirtualClock(T0)
    # No jitter: the order below depends on where each slot falls.
    settings_ = OutboxSettings(rate_per_minute=60, jitter=timedelta(0))
    outbox = Outbox(engine, settings_, QuietHours(), clock)
    gateway = RecordingGateway(clock)
    outbox.enqueue([push(g, T0 + timedelta(seconds=g)) for g in range(5)])
    outbox.enqueue([reply("reply:late", T0 + timedelta(seconds=2))])
    outbox.enqueue(
        [OutboxItem(key="invite:1", action=Invite("g001", "wxid_new"), not_before=T0)]
    )
    for _ in range(8):
        await outbox.deliver_due(gateway)
        if (due := outbox.next_due()) is None:
            break
        clock.set(max(due, clock.now()))
    order = [
        a.to if isinstance(a, Say) else f"invite:{a.contact}" for _, a in gateway.sent
    ]
    # The invitation (due first) goes first, taking the T0 slot; g000 at T0 + 1 s; the reply at
    # T0 + 2 s, as soon as it is due, ahead of g001 (due since T0 + 1 s); pushes in their order.
    assert [t - T0 for t, _ in gateway.sent] == [timedelta(seconds=s) for s in range(7)]
    assert order == [
        "invite:wxid_new",
        room_conv("g000"),
        contact_conv("wxid_member"),
        room_conv("g001"),
        room_conv("g002"),
        room_conv("g003"),
        room_conv("g004"),
    ]


def test_an_unknown_priority_is_refused_with_the_key(engine: Engine) -> None:
    outbox = Outbox(engine, OutboxSettings(), QuietHours(), VirtualClock(T0))
    bad = OutboxItem(key="k", action=Say(room_conv("g"), "x"), not_before=T0, priority=7)
    with pytest.raises(ValueError, match="'k': priority must be one of"):
        outbox.enqueue([bad])


_RAW = "SELECT key, not_before, next_attempt_at, created_at, mentions, marketing, priority, reason"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(min_value=-(10**6), max_value=10**6), min_size=1, max_size=20),
    mentions=st.lists(st.sampled_from(["a", "b", "wxid_x"]), max_size=2),
    marketing=st.booleans(),
)
def test_the_tuple_insert_stores_what_the_orm_path_stores(
    engine: Engine, offsets: list[int], mentions: list[str], marketing: bool
) -> None:
    """Same spelling of every value (SQLite keeps datetimes as text and compares them as text)."""

    def stored() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(f"{_RAW} FROM outbox ORDER BY key")]

    with engine.begin() as conn:
        conn.execute(sa.delete(OutboxRow))
    outbox = Outbox(engine, OutboxSettings(), QuietHours(), VirtualClock(T0))
    items = [
        OutboxItem(
            key=f"k{i:02d}",
            action=Say(room_conv(f"g{i}"), f"文本{i}", tuple(mentions)),
            not_before=T0 + timedelta(microseconds=o * 997),
            campaign_id="c",
            marketing=marketing,
        )
        for i, o in enumerate(offsets)
    ]
    assert outbox.enqueue(items) == len(items)
    assert outbox.enqueue(items) == 0  # idempotent
    fast = stored()
    with Session(engine) as s, s.begin():
        s.execute(sa.delete(OutboxRow))
        rows = [dict(zip(_ROW_COLUMNS, _row_values(i, T0, None), strict=True)) for i in items]
        insert_ignore_many(s, OutboxRow, rows, "key")
    assert fast == stored()
    assert {r[6] for r in fast} == {PRIORITY_PUSH if marketing else 0}
