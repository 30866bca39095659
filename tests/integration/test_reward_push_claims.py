"""Reward pushes from several processes: each reward is POSTed exactly once between them, a
claim left by a process that died lapses and the reward is pushed once more, and migration 0013
adds and removes the claim columns. SQLite and PostgreSQL, against a real HTTP server."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from bot.referrals import ConversionEvent, ReferralLedger
from bot.referrals.fulfilment import PushResult, RewardFulfilment, _Failure
from db.referral_repositories import REWARDS
from db.session import alembic_config, make_engine, upgrade
from scheduler.clock import VirtualClock
from tests.integration.test_reward_push import KEY, PROGRAMME, RETRY, T0, Partner

REWARDS_N = 24


@pytest.fixture
def ledger(db_url: str) -> Iterator[ReferralLedger]:
    """A ledger with one pending reward for each of ``REWARDS_N`` referrers."""
    upgrade(db_url)
    engine = make_engine(db_url)
    ledger = ReferralLedger(engine, lambda: PROGRAMME, VirtualClock(T0))
    for n in range(REWARDS_N):
        event = {
            "event_id": f"ev-{n}",
            "type": "application_approved",
            "referral_code": "AAAAAAAA-BBBBBBBB",
            "applicant": f"friend-{n}",
            "occurred_at": T0 - timedelta(hours=1),
        }
        ledger.record(ConversionEvent.model_validate(event), f"m{n}")
    yield ledger
    engine.dispose()


def pusher(engine: Engine, ledger: ReferralLedger, url: str, **kw: object) -> RewardFulfilment:
    return RewardFulfilment(engine, ledger.clock, RETRY, push_url=url, push_key=KEY, **kw)  # type: ignore[arg-type]


def test_two_concurrent_pushers_post_each_reward_exactly_once(
    ledger: ReferralLedger, db_url: str
) -> None:
    ids = sorted(r.id for r in ledger.queries.rewards())
    assert len(ids) == REWARDS_N
    # Two "processes": each its own engine (connection pool) and holder name. The partner is
    # slow, so while one pusher waits on a POST the other claims and posts.
    engines = [make_engine(db_url) for _ in range(2)]
    results: list[PushResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    with Partner([], delay_s=0.02) as partner:
        pushers = [pusher(e, ledger, partner.url) for e in engines]

        def run(p: RewardFulfilment) -> None:
            start.wait()
            try:
                results.append(p.push_due())
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(p,)) for p in pushers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    posted = Counter(h["idempotency-key"] for h, _ in partner.requests)
    assert posted == Counter(f"qunfu-reward-{i}" for i in ids), "a reward posted twice or never"
    sent = [i for r in results for i in r.sent]
    assert sorted(sent) == ids
    rewards = ledger.queries.rewards()
    assert {r.status for r in rewards} == {"sent"}
    assert all(r.claimed_by is None and r.claimed_until is None for r in rewards)
    for i in ids:
        moves = [(h["from_status"], h["to_status"]) for h in ledger.queries.history(i)]
        assert moves == [(None, "pending"), ("pending", "sent")]


class Died(BaseException):
    """The process ends in the middle of a POST (not an error the push could catch)."""


class DiesMidPost(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise Died


def test_a_claim_left_by_a_dead_pusher_lapses_then_the_reward_is_pushed_once(
    ledger: ReferralLedger,
) -> None:
    clock = ledger.clock
    assert isinstance(clock, VirtualClock)
    first = min(r.id for r in ledger.queries.rewards())
    with Partner([]) as partner:
        dying = pusher(ledger.engine, ledger, partner.url, transport=DiesMidPost())
        with pytest.raises(Died):
            dying.push_due()
        (held,) = [r for r in ledger.queries.rewards() if r.claimed_by is not None]
        assert (held.id, held.claimed_by) == (first, dying.holder)
        assert held.claimed_until == T0 + dying.lease

        survivor = pusher(ledger.engine, ledger, partner.url)
        # The claimed reward is passed over while its claim lasts; the others are pushed.
        assert sorted(survivor.push_due().sent) == sorted(
            r.id for r in ledger.queries.rewards() if r.id != first
        )
        assert survivor.next_due() == T0 + dying.lease  # when the dead claim lapses
        clock.set(T0 + dying.lease - timedelta(seconds=1))
        assert survivor.push_due().sent == []
        clock.set(T0 + dying.lease)
        assert survivor.push_due().sent == [first]
        assert survivor.push_due().sent == []
        assert survivor.next_due() is None
    posted = Counter(h["idempotency-key"] for h, _ in partner.requests)
    assert posted[f"qunfu-reward-{first}"] == 1
    assert set(posted.values()) == {1}


def test_a_failed_push_of_a_lapsed_claim_leaves_the_new_holders_claim_alone(
    ledger: ReferralLedger,
) -> None:
    # A pusher whose claim lapsed (stalled far past the lease) must not clear the claim of the
    # process that took the reward over: that would let a third process post it as well.
    clock = ledger.clock
    assert isinstance(clock, VirtualClock)
    with Partner([]) as partner:
        slow = pusher(ledger.engine, ledger, partner.url)
        taken = slow._claim()
        assert taken is not None
        clock.set(T0 + slow.lease)
        other = pusher(ledger.engine, ledger, partner.url)
        again = other._claim()
        assert again is not None and again.id == taken.id
        slow._failed(taken, _Failure("HTTP 503", transient=True))
    (row,) = [r for r in ledger.queries.rewards() if r.id == taken.id]
    assert (row.claimed_by, row.attempts) == (other.holder, 0)


def test_migration_0013_adds_and_removes_the_claim_columns(db_url: str) -> None:
    upgrade(db_url, "0012")
    engine = make_engine(db_url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("referral_reward")}
        assert "claimed_by" not in columns
        with engine.begin() as conn:  # a reward stored before the migration
            conn.execute(
                sa.insert(REWARDS.c.referrer_id.table).values(
                    referrer_id="m1",
                    tier=1,
                    reward="咖啡券",
                    status="pending",
                    held_reason="",
                    reached_at=T0,
                    reached_by="ev-1",
                    created_at=T0,
                    updated_at=T0,
                    decision_note="",
                    attempts=0,
                    last_error="",
                )  # fmt: skip
            )
        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(sa.select(REWARDS)).one()
        assert (row.claimed_by, row.claimed_until, row.referrer_id) == (None, None, "m1")
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("referral_reward")}
        assert {"claimed_by", "claimed_until"}.isdisjoint(columns) and "attempts" in columns
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT referrer_id FROM referral_reward")).all() == [
                ("m1",)
            ]
    finally:
        engine.dispose()
