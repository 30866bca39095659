"""Two bot accounts, each on its own real puppet service; one service refuses the account's token.

Issue 9 ("Bad input"): the refused account is marked down (health row, ``qunfu accounts``, one
private message to ops through the other account), its group's push waits in the outbox, and the
other account keeps sending its own group's push.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from bot.accounts import account_overview
from bot.app import Qunfu, load_source
from bot.gateways.accounts import MultiAccountGateway
from bot.gateways.wechaty import WechatyGateway
from bot.outbox import OutboxRecord
from scheduler.clock import SHANGHAI, ScaledClock
from tests.support import bot_settings, copy_ops
from tests.wechaty.conftest import PuppetHarness, Report, _require_node, free_port

START = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
SPEED = 60.0  # one real second is one simulated minute
ROOM_A = "10001@chatroom"  # sz-nanshan-kjy, served by bot-a (its service takes the token)
ROOM_B = "10002@chatroom"  # sz-nanshan-szu, served by bot-b (its service refuses the token)
OPS = "ops-wang"

PUSH = """
campaigns:
  - id: push-both
    name: 两群推送
    kind: once
    targets: {groups: [sz-nanshan-kjy, sz-nanshan-szu]}
    schedule: {dates: [2026-12-01], at: "10:05"}
    template: daily.j2
    data: {perk: 双账号推送, app_entry: 首页}
"""


def ops_with_two_accounts(tmp_path: Path) -> Path:
    """The shipped ops data with each of two groups pinned to an account and a room id."""
    base = copy_ops(tmp_path)
    groups = base / "campaigns" / "groups.yaml"
    text = groups.read_text(encoding="utf-8")
    for group, room, account in (
        ("sz-nanshan-kjy", ROOM_A, "bot-a"),
        ("sz-nanshan-szu", ROOM_B, "bot-b"),
    ):
        text = text.replace(
            f"  - id: {group}\n",
            f'  - id: {group}\n    room: "{room}"\n    account: {account}\n',
            1,
        )
    groups.write_text(text, encoding="utf-8")
    (base / "campaigns" / "two-accounts.yaml").write_text(PUSH, encoding="utf-8")
    return base


def client(harness: PuppetHarness, token: str, clock: ScaledClock) -> WechatyGateway:
    return WechatyGateway(
        harness.endpoint,
        token,
        keepalive=2.0,
        call_timeout=5.0,
        connect_timeout=5.0,
        backoff=(0.2, 1.0),
        clock=clock,
    )


@pytest.fixture
async def two_services(tmp_path: Path) -> AsyncIterator[tuple[PuppetHarness, PuppetHarness]]:
    _require_node()
    a = PuppetHarness(free_port(), secrets.token_hex(12), tmp_path / "service-a.log")
    b = PuppetHarness(free_port(), secrets.token_hex(12), tmp_path / "service-b.log")
    await a.start()
    try:
        await b.start()
        try:
            yield a, b
        finally:
            await b.stop()
    finally:
        await a.stop()


async def settled(bot: Qunfu, key: str, timeout: float = 10.0) -> OutboxRecord:
    """The outbox row ``key`` once its send is recorded (the service may report it first)."""

    async def watch() -> OutboxRecord:
        while (row := bot.outbox.get(key)) is None or row.status in ("pending", "sending"):
            await asyncio.sleep(0.1)
        return row

    return await asyncio.wait_for(watch(), timeout)


def in_room(report: Report, room: str, *words: str) -> bool:
    return (
        report.get("event") == "sent"
        and report.get("conversation") == room
        and all(w in report.get("text", "") for w in words)
    )


async def test_a_refused_token_marks_that_account_down_and_the_other_keeps_sending(
    tmp_path: Path, two_services: tuple[PuppetHarness, PuppetHarness]
) -> None:
    service_a, service_b = two_services
    for service, room in ((service_a, ROOM_A), (service_b, ROOM_B)):
        await service.contact(OPS, "运营小王")
        await service.room(room, [], topic=room)
    clock = ScaledClock(START, SPEED)
    gateway = MultiAccountGateway(
        {
            "bot-a": client(service_a, service_a.token, clock),
            # bot-b's service was started with another token: every call is refused.
            "bot-b": client(service_b, "not-" + service_b.token, clock),
        }
    )
    await gateway.start()
    await gateway.wait_logged_in(30)
    settings = bot_settings(
        ops_with_two_accounts(tmp_path),
        database={"url": f"sqlite:///{tmp_path}/q.db"},
        bot={"id": gateway.bot_id},
        accounts=[{"id": "bot-a"}, {"id": "bot-b"}],
        entry={"ops_contacts": [OPS]},
        outbox={"rate_per_minute": 120, "jitter": "0s", "backoff": "2s", "max_backoff": "10s"},
    )
    bot = Qunfu(settings, clock, cast(Any, gateway), load_source(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run_forever(stop))
    try:
        pushed = await service_a.wait_sent(lambda r: in_room(r, ROOM_A, "双账号推送"), timeout=40)
        assert pushed["conversation"] == ROOM_A
        # Ops hear about bot-b privately, through bot-a (bot-b cannot send).
        told = await service_a.wait_sent(
            lambda r: r.get("event") == "sent" and r.get("conversation") == OPS, timeout=40
        )
        assert "bot-b" in told["text"] and "账号异常" in told["text"]

        health = bot.account_health.all()
        assert health["bot-b"].up is False and health["bot-b"].last_error
        assert "token" in health["bot-b"].last_error
        assert health["bot-a"].up is True
        rows = {
            r["account"]: r for r in account_overview(settings, bot.ops, bot.engine, clock.now())
        }
        assert rows["bot-b"]["health"] == "down" and rows["bot-a"]["health"] == "up"

        waiting = bot.outbox.get("push-both:sz-nanshan-szu:2026-12-01T10:05:00+08:00")
        assert waiting is not None and waiting.status == "pending", waiting
        assert waiting.account == "bot-b"
        delivered = await settled(bot, "push-both:sz-nanshan-kjy:2026-12-01T10:05:00+08:00")
        assert delivered.status == "sent"
        assert not [r for r in service_b.sent if r.get("event") == "sent"]
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await gateway.stop()
        bot.close()


class FakeConnection:
    """Stands for one account's WechatyGateway: counts connects and disconnects."""

    def __init__(self) -> None:
        self.live = False
        self.connects = 0
        self.disconnects = 0
        self._events: asyncio.Queue[Any] = asyncio.Queue()

    async def start(self) -> None:
        self.live, self.connects = True, self.connects + 1

    async def stop(self) -> None:
        self.live, self.disconnects = False, self.disconnects + 1

    def ready(self) -> bool:
        return self.live

    async def wait_logged_in(self, timeout: float | None = None) -> None:
        return None

    async def events(self) -> AsyncIterator[Any]:
        while True:
            yield await self._events.get()


async def test_a_process_connects_only_the_accounts_it_holds_and_follows_its_leases() -> None:
    """Issue 9: every process used to connect every account; now a lease taken connects its
    account and a lease let go disconnects it (after ``linger``), the others untouched."""
    fakes = {a: FakeConnection() for a in ("bot-a", "bot-b", "bot-c")}
    held: frozenset[str] = frozenset({"bot-a"})
    gateway = MultiAccountGateway(cast(Any, fakes), every=3600, linger=0)
    gateway.follow(lambda: held)
    await gateway.start()
    try:
        await gateway.wait_logged_in(1)
        assert gateway.connected() == {"bot-a"}
        assert [f.connects for f in fakes.values()] == [1, 0, 0]

        held = frozenset({"bot-a", "bot-c"})  # another process died: its lease is taken
        await gateway.sync()
        assert gateway.connected() == {"bot-a", "bot-c"}
        held = frozenset({"bot-c"})  # bot-a handed over (fair share)
        await gateway.sync()
        assert gateway.connected() == {"bot-c"}
        assert (fakes["bot-a"].connects, fakes["bot-a"].disconnects) == (1, 1)
        assert (fakes["bot-b"].connects, fakes["bot-c"].connects) == (0, 1)
    finally:
        await gateway.stop()
    assert not any(f.live for f in fakes.values())


async def test_a_lease_let_go_keeps_its_connection_for_the_linger_time() -> None:
    """A send in hand when the lease is let go must finish: the disconnect waits ``linger``."""
    fakes = {"bot-a": FakeConnection(), "bot-b": FakeConnection()}
    held: frozenset[str] = frozenset({"bot-a", "bot-b"})
    gateway = MultiAccountGateway(cast(Any, fakes), every=3600, linger=3600)
    gateway.follow(lambda: held)
    await gateway.start()
    try:
        held = frozenset({"bot-b"})
        await gateway.sync()
        assert gateway.connected() == {"bot-a", "bot-b"} and fakes["bot-a"].disconnects == 0
        held = frozenset({"bot-a", "bot-b"})  # taken back before the linger ran out
        await gateway.sync()
        assert fakes["bot-a"].connects == 1 and fakes["bot-a"].disconnects == 0
    finally:
        await gateway.stop()


async def test_without_leases_every_account_is_connected_and_none_held_waits_for_nothing() -> None:
    fakes = {"bot-a": FakeConnection(), "bot-b": FakeConnection()}
    alone = MultiAccountGateway(cast(Any, fakes), every=3600)
    await alone.start()
    assert alone.connected() == {"bot-a", "bot-b"}
    await alone.stop()
    idle = MultiAccountGateway(cast(Any, {"bot-c": FakeConnection()}), every=3600)
    idle.follow(frozenset)
    await idle.start()
    await idle.wait_logged_in(1)  # holds no lease: nothing to wait for
    assert idle.connected() == frozenset()
    await idle.stop()
