"""Account leases handed between processes (PostgreSQL), driven beat by beat.

A process that joined while another held every account used to wait up to two heartbeats of
8 s (the holder noticing, then releasing a beat later) before its share moved; the scale-out
benchmark lost a quarter of its deliveries in runs where that happened mid-push. Now the holder
releases a lease it handed over as soon as no send of that account is in hand, and a process
short of its share looks again every half second while there is something to take.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from bot.leases import HANDOVER_EVERY_S, REBALANCE_EVERY_S, AccountLeases
from db.session import make_engine, upgrade

ACCOUNTS = ["bot-a", "bot-b", "bot-c", "bot-d"]


@pytest.fixture
def pg_engine(pg_cluster) -> Iterator[Engine]:  # noqa: ANN001
    name = f"leases_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        pg_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_a_lease_handed_over_waits_for_the_send_in_hand_then_goes_at_once(
    pg_engine: Engine,
) -> None:
    in_hand: set[str] = set()
    first = AccountLeases(
        pg_engine, lambda: ACCOUNTS, holder="first", in_hand=lambda a: bool(in_hand & a)
    )
    assert first.beat() == frozenset(ACCOUNTS)  # alone: every account
    assert first.period() == REBALANCE_EVERY_S
    second = AccountLeases(pg_engine, lambda: ACCOUNTS, holder="second")
    assert second.beat() == frozenset()  # all held; it is short and something will move
    assert second.period() == HANDOVER_EVERY_S

    in_hand.add("bot-d")  # a send of bot-d is being made right now
    held = first.beat()  # it notices the second process: two accounts stop being handed out
    assert held == {"bot-a", "bot-b"} and first.period() == HANDOVER_EVERY_S
    assert first.beat() == held  # bot-d's send is still in hand: nothing released yet
    assert second.beat() == frozenset()
    in_hand.clear()
    first.beat()  # no send in hand: both released at this beat, not a heartbeat later
    assert second.beat() == {"bot-c", "bot-d"}
    assert second.period() == REBALANCE_EVERY_S and first.period() == REBALANCE_EVERY_S
    assert first.beat() == {"bot-a", "bot-b"}


@pytest.mark.postgres
def test_shares_that_do_not_divide_evenly_do_not_keep_beating_fast(pg_engine: Engine) -> None:
    accounts = ACCOUNTS[:3]
    one = AccountLeases(pg_engine, lambda: accounts, holder="one", in_hand=lambda a: False)
    two = AccountLeases(pg_engine, lambda: accounts, holder="two", in_hand=lambda a: False)
    one.beat()
    two.beat()
    for _ in range(3):
        one.beat()
        two.beat()
    assert sorted(map(len, (one.held(), two.held()))) == [1, 2]  # shares of ceil(3 / 2) = 2
    assert one.period() == two.period() == REBALANCE_EVERY_S  # nothing is left to move


@pytest.mark.postgres
def test_a_process_is_woken_when_another_queues_sends(pg_engine: Engine) -> None:
    """A process used to learn of sends another process queued only when its own sleep ended
    (up to 30 s of the bot's clock): in the scale-out benchmark half the accounts started a push
    30 s late. An enqueue now notifies every listening process when it commits."""
    import threading
    from datetime import datetime

    from bot.config import OutboxSettings, QuietHours
    from bot.events import Say, room_conv
    from bot.outbox import Outbox, OutboxItem
    from bot.wakeups import Listener
    from scheduler.clock import SHANGHAI, VirtualClock

    woken = threading.Event()
    listener = Listener(make_engine(str(pg_engine.url.render_as_string(False))), woken.set)
    listener.start()
    try:
        at = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
        other = Outbox(pg_engine, OutboxSettings(), QuietHours(), VirtualClock(at))
        other.enqueue([])  # nothing queued: nobody is woken
        assert not woken.wait(1.5)
        item = OutboxItem(key="k1", action=Say(room_conv("g1"), "午餐"), not_before=at)
        assert other.enqueue([item]) == 1
        assert woken.wait(10), "not woken by the other process's enqueue"
        woken.clear()
        assert other.enqueue([item]) == 0  # already queued: nothing new, nobody woken
        assert not woken.wait(1.5)
    finally:
        listener.stop()
