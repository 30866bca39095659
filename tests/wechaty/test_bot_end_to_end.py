"""The whole bot on a real Wechaty puppet service: a batched welcome, a FAQ answer and scheduled
pushes reach the Node side, and a service restart mid-run loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.app import Qunfu, load_source
from bot.gateways.wechaty import WechatyGateway
from scheduler.clock import SHANGHAI, ScaledClock
from tests.support import bot_settings, copy_ops
from tests.wechaty.conftest import PuppetHarness, Report

ROOM = "10001@chatroom"  # the platform's id of 深圳南山科技园福利1群
START = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
SPEED = 60.0  # one real second is one simulated minute

PUSHES = """
campaigns:
  - id: push-one
    name: 第一条推送
    kind: once
    targets: {groups: [sz-nanshan-kjy]}
    schedule: {dates: [2026-12-01], at: "10:12"}
    template: daily.j2
    data: {perk: 推送一号, app_entry: 首页}
  - id: push-two
    name: 第二条推送
    kind: once
    targets: {groups: [sz-nanshan-kjy]}
    schedule: {dates: [2026-12-01], at: "10:24"}
    template: daily.j2
    data: {perk: 推送二号, app_entry: 首页}
"""


def ops_for_the_service(tmp_path: Path) -> Path:
    base = copy_ops(tmp_path)
    groups = base / "campaigns" / "groups.yaml"
    groups.write_text(
        groups.read_text(encoding="utf-8").replace(
            "  - id: sz-nanshan-kjy\n", f'  - id: sz-nanshan-kjy\n    room: "{ROOM}"\n', 1
        ),
        encoding="utf-8",
    )
    (base / "campaigns" / "e2e-pushes.yaml").write_text(PUSHES, encoding="utf-8")
    return base


@pytest.fixture
async def running_bot(
    tmp_path: Path, puppet_service: PuppetHarness
) -> AsyncIterator[tuple[Qunfu, PuppetHarness]]:
    await puppet_service.contact("u1", "张三")
    await puppet_service.contact("u2", "李四")
    await puppet_service.room(ROOM, [], topic="深圳南山科技园福利1群")
    clock = ScaledClock(START, SPEED)
    gateway = WechatyGateway(
        puppet_service.endpoint,
        puppet_service.token,
        keepalive=2.0,
        call_timeout=5.0,
        connect_timeout=5.0,
        backoff=(0.2, 1.0),
        clock=clock,
    )
    await gateway.start()
    await gateway.wait_logged_in(30)
    settings = bot_settings(
        ops_for_the_service(tmp_path),
        database={"url": f"sqlite:///{tmp_path}/q.db"},
        bot={"id": gateway.bot_id},
        outbox={"rate_per_minute": 120, "jitter": "0s", "backoff": "2s", "max_backoff": "10s"},
    )
    bot = Qunfu(settings, clock, gateway, load_source(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run_forever(stop))
    try:
        yield bot, puppet_service
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await gateway.aclose()
        bot.close()


def in_room(report: Report, *words: str) -> bool:
    return (
        report.get("event") == "sent"
        and report.get("conversation") == ROOM
        and all(w in report.get("text", "") for w in words)
    )


async def test_welcome_faq_and_pushes_survive_a_service_restart(
    running_bot: tuple[Qunfu, PuppetHarness],
) -> None:
    bot, service = running_bot
    await service.join(ROOM, ["u1"])
    await service.join(ROOM, ["u2"])
    welcome = await service.wait_sent(lambda r: in_room(r, "欢迎加入"), timeout=20)
    assert sorted(welcome["mentions"]) == ["u1", "u2"]
    assert "第一条推送" in welcome["text"]  # the perk calendar lists the group's campaigns

    await service.say("u1", "@群福助手 年费怎么减免?", room=ROOM, mentions=(service.bot_id,))
    answer = await service.wait_sent(lambda r: in_room(r, "免年费"), timeout=20)
    assert answer["mentions"] == ["u1"]

    await service.wait_sent(lambda r: in_room(r, "推送一号"), timeout=30)
    await asyncio.sleep(1)  # let the service's answer reach the bot (see the test below)

    # The service goes away before the second push is due and comes back after it.
    await service.stop()
    while bot.clock.now() < START.replace(minute=27):
        await asyncio.sleep(0.2)
    assert not [r for r in service.sent if in_room(r, "推送二号")]
    await service.start()
    await service.wait_sent(lambda r: in_room(r, "推送二号"), timeout=40)
    await asyncio.sleep(2)  # anything sent twice would show up by now

    texts = [r["text"] for r in service.sent if r.get("event") == "sent"]
    for words in (("欢迎加入",), ("免年费",), ("推送一号",), ("推送二号",)):
        assert sum(all(w in t for w in words) for t in texts) == 1, (words, texts)
    counts = bot.outbox.status_counts()
    assert counts.get("failed", 0) == 0 and counts.get("uncertain", 0) == 0, counts
    assert bot.gateway.health()["reconnects"] >= 1


async def test_a_send_cut_off_mid_call_is_uncertain_and_never_sent_twice(
    running_bot: tuple[Qunfu, PuppetHarness],
) -> None:
    """The service takes the first push and dies before answering: the bot cannot know whether
    it went out, so it records it as uncertain rather than risk a second copy."""
    bot, service = running_bot
    await service.wait_sent(lambda r: in_room(r, "推送一号"), timeout=30)
    await service.stop()  # at once: the answer to the send may never reach the bot
    await asyncio.sleep(3)
    await service.start()
    await service.wait_sent(lambda r: in_room(r, "推送二号"), timeout=40)
    await asyncio.sleep(2)
    texts = [r["text"] for r in service.sent if r.get("event") == "sent"]
    assert sum("推送一号" in t for t in texts) == 1
    assert sum("推送二号" in t for t in texts) == 1
    one = bot.outbox.get("push-one:sz-nanshan-kjy:2026-12-01T10:12:00+08:00")
    two = bot.outbox.get("push-two:sz-nanshan-kjy:2026-12-01T10:24:00+08:00")
    assert one is not None and one.status in ("sent", "uncertain") and one.attempts == 1
    assert two is not None and two.status == "sent"
    assert bot.outbox.status_counts().get("failed", 0) == 0
