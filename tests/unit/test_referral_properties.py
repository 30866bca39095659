"""Property: shuffled, duplicated and concurrent deliveries of the same events give exactly the
same ledger (which friend counts for whom, why each event did or did not, which tiers exist and
whether they are held), on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.opsdata.models import ReferralProgramme
from bot.referrals import Burst, ConversionEvent, ReferralLedger
from db.referral_repositories import EVENTS, HISTORY, REWARDS
from scheduler.clock import SHANGHAI, VirtualClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
PROGRAMME = ReferralProgramme.model_validate(
    {
        "tiers": [
            {"count": 1, "reward": "A"},
            {"count": 2, "reward": "B"},
            {"count": 4, "reward": "C"},
        ],
        "window_days": 3,
        "qualifying_event": "application_approved",
        "caps": {"per_referrer": 5, "per_referrer_per_month": 4},
    }
)
Delivery = tuple[str, ConversionEvent]


@st.composite
def deliveries(draw: st.DrawFn) -> list[Delivery]:
    """Events of a few referrers about a few applicants, close in time (ties, bursts, caps)."""
    n = draw(st.integers(1, 14))
    out: list[Delivery] = []
    for i in range(n):
        applicant = draw(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]))
        referrer = draw(st.sampled_from(["m1", "m2", "m3"]))
        minutes = draw(st.sampled_from([0, 5, 30, 61, 600, 3000, 5000, 44_000]))
        kind = draw(st.sampled_from(["application_approved"] * 4 + ["card_activated"]))
        own = draw(st.sampled_from([None, None, None, applicant, "z"]))
        event = ConversionEvent(
            event_id=f"e{i:02d}",
            type=kind,
            referral_code="AAAAAAAA-BBBBBBBB",
            applicant=applicant,
            occurred_at=T0 + timedelta(minutes=minutes),
            referrer_applicant=own,
        )
        out.append((referrer, event))
    return out


def snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        events = {
            r.event_id: (r.wins, r.outcome)
            for r in conn.execute(sa.select(EVENTS.c.event_id, EVENTS.c.wins, EVENTS.c.outcome))
        }
        rewards = {
            (r.referrer_id, r.tier): (r.reward, r.status, r.held_reason, r.reached_at, r.reached_by)
            for r in conn.execute(sa.select(REWARDS))
        }
    return {"events": events, "rewards": rewards}


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (HISTORY, REWARDS, EVENTS):
            conn.execute(sa.delete(table))


def deliver(ledger: ReferralLedger, batch: list[Delivery]) -> None:
    for referrer, event in batch:
        ledger.record(event, referrer)


def deliver_concurrently(ledger: ReferralLedger, batch: list[Delivery], threads: int = 4) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(part: list[Delivery]) -> None:
        try:
            start.wait()
            deliver(ledger, part)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    parts = [batch[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=deliveries(), seed=st.integers(0, 2**32), replays=st.integers(0, 6))
def test_order_duplicates_and_concurrency_do_not_change_the_ledger(
    engine: Engine, events: list[Delivery], seed: int, replays: int
) -> None:
    ledger = ReferralLedger(
        engine, lambda: PROGRAMME, VirtualClock(T0), Burst(3, timedelta(minutes=60))
    )
    rng = random.Random(seed)
    in_order = sorted(events, key=lambda d: (d[1].occurred_at, d[1].event_id))
    reset(engine)
    deliver(ledger, in_order)
    expected = snapshot(engine)

    shuffled = events + [rng.choice(events) for _ in range(replays)]
    rng.shuffle(shuffled)
    reset(engine)
    deliver(ledger, shuffled)
    assert snapshot(engine) == expected

    rng.shuffle(shuffled)
    reset(engine)
    deliver_concurrently(ledger, shuffled + shuffled[: len(shuffled) // 2])
    assert snapshot(engine) == expected
    # No tier twice, whatever happened: the unique constraint is the last word.
    assert len(expected["rewards"]) == len(set(expected["rewards"]))
