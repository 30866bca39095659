"""The private chat is a channel of the entry funnel (``chat``, 私聊机器人).

Observed after ``./run.sh``: the demo's newcomer asked the bot, shared a location, picked a
group and joined, and ``qunfu funnel --demo`` still showed zeros everywhere: only entry-page
visits were recorded.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.entry.funnel import EntryFunnel
from bot.entry.joins import CHAT_CHANNEL
from scheduler.clock import SHANGHAI
from tests.support import ROOT, BotRig, bot_settings, copy_ops, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
KJY = (22.5405, 113.9345)  # GCJ-02, 深圳南山科技园: sz-nanshan-kjy is offered first


def _rig(db: Path) -> BotRig:
    r = make_rig(bot_settings(ROOT, database={"url": f"sqlite:///{db}"}), T0)
    for cid, name in (("u1", "张三"), ("u2", "李四"), ("u3", "王五"), ("u4", "赵六")):
        r.gateway.add_contact(cid, name)
    return r


async def _step(r: BotRig, seconds: int = 10) -> None:
    await r.advance_to(r.clock.now() + timedelta(seconds=seconds))


def _chat_row(r: BotRig):  # noqa: ANN202
    funnel = EntryFunnel(r.bot.visits, r.clock, timedelta(days=7))
    rows = funnel.report(date(2026, 12, 1), date(2026, 12, 1), {CHAT_CHANNEL: "私聊机器人"})
    return next(row for row in rows if row.channel == CHAT_CHANNEL), rows


async def test_ask_locate_pick_join_in_the_private_chat_is_one_visit_through_the_funnel(
    tmp_path: Path,
) -> None:
    r = _rig(tmp_path / "q.db")
    # u1 goes all the way; asking twice and sharing the location twice is still one visit.
    r.gateway.say("u1", "我要进群")
    await _step(r)
    r.gateway.say("u1", "我要进群")
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    r.gateway.say("u1", "1")
    await _step(r)
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    # u2 only asks; u3 shares a location without asking, then stops.
    r.gateway.say("u2", "怎么加群")
    r.gateway.share_location("u3", *KJY)
    # Someone who joins by themselves, with no chat at all, is organic: not a chat visit.
    r.gateway.join("sz-nanshan-szu", ["u4"])
    await _step(r)
    row, _ = _chat_row(r)
    assert (row.visits, row.located, row.chosen, row.joined) == (3, 2, 1, 1)
    # What ops read: `qunfu funnel` names the chat channel and counts it in the total.
    env = {"QUNFU_DATABASE__URL": f"sqlite:///{tmp_path / 'q.db'}"}
    args = ["funnel", "--config", str(ROOT / "config.yaml"), "--from", "2026-12-01"]
    report = CliRunner().invoke(app, [*args, "--to", "2026-12-01", "--json"], env=env)
    assert report.exit_code == 0, report.output
    doc = json.loads(report.stdout)
    chat = next(c for c in doc["channels"] if c["channel"] == CHAT_CHANNEL)
    assert chat["name"] == "私聊机器人"
    assert (chat["visits"], chat["located"], chat["chosen"], chat["joined"]) == (3, 2, 1, 1)
    assert doc["total"]["visits"] == 3


async def test_a_pick_of_another_group_than_the_one_joined_is_not_a_chat_join(
    tmp_path: Path,
) -> None:
    r = _rig(tmp_path / "q.db")
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    r.gateway.say("u1", "1")  # invited into sz-nanshan-kjy ...
    await _step(r)
    r.gateway.join("sz-nanshan-szu", ["u1"])  # ... but joined another group
    await _step(r)
    row, _ = _chat_row(r)
    assert (row.visits, row.located, row.chosen, row.joined) == (1, 1, 1, 0)


def test_a_live_code_channel_may_not_take_the_chat_channels_id(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    shutil.copy(ROOT / "config.yaml", base / "config.yaml")
    channels = base / "campaigns" / "channels.yaml"
    text = channels.read_text(encoding="utf-8")
    channels.write_text(text.replace("id: staff-card", "id: chat"), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--config", str(base / "config.yaml")])
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "reserved" in x)
    assert line.startswith(f"{channels}:") and "private chat" in line


async def test_a_pick_the_next_morning_continues_yesterday_s_located_visit(
    tmp_path: Path,
) -> None:
    # The visit lives while its last step is less than a day old, as the offer does: asked at
    # 10:00, located at 11:00, picked at 10:30 the next day is still one visit.
    r = _rig(tmp_path / "q.db")
    r.gateway.say("u1", "我要进群")
    await _step(r)
    await _step(r, 3600)
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    await _step(r, 23 * 3600 + 1800)
    r.gateway.say("u1", "1")
    await _step(r)
    row, _ = _chat_row(r)
    assert (row.visits, row.located, row.chosen) == (1, 1, 1)
