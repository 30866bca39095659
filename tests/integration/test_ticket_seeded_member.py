"""A member who was in the group before the bot (seeded from the directory's count), asks the
manager something and then leaves: the ledger records the leave, so the answer goes to them
privately instead of into a group they can no longer read; a second leave event for them is
not counted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from bot.events import MemberLeft
from db.repositories import GroupRepo
from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
ROOM = "sz-nanshan-kjy"  # manager cm-li (wxid_cm_li), 186 members seeded from the directory


async def test_a_seeded_member_who_left_gets_the_answer_privately(tmp_path: Path) -> None:
    settings = bot_settings(copy_ops(tmp_path), database={"url": f"sqlite:///{tmp_path}/q.db"})
    rig = make_rig(settings, T0)
    rig.gateway.add_contact("m-7", "老会员")
    rig.gateway.add_contact("wxid_cm_li", "李经理")
    rig.gateway.room(ROOM).members.add("m-7")  # in the room since before the bot: never joined
    counts = GroupRepo(rig.bot.engine)
    await rig.advance_to(T0)
    before = counts.member_count(ROOM)
    assert before is not None

    rig.gateway.say("m-7", "@群福助手 我的卡被盗刷了怎么办", ROOM, mentions=["bot"])
    await rig.advance_to(T0 + timedelta(minutes=1))
    rig.gateway.leave(ROOM, ["m-7"])
    await rig.advance_to(T0 + timedelta(minutes=2))
    await rig.bot.handle(MemberLeft(T0 + timedelta(minutes=2), ROOM, ("m-7",)))  # repeated
    assert counts.member_count(ROOM) == before - 1

    rig.gateway.say("wxid_cm_li", "#1 请立即致电挂失")
    await rig.advance_to(T0 + timedelta(minutes=5))
    answers = [r for r in rig.records() if "请立即致电挂失" in r["text"]]
    assert [r["to"] for r in answers] == ["contact:m-7"]
    told = [r["text"] for r in rig.records() if r["to"] == "contact:wxid_cm_li"]
    assert any("已退出" in t and "私信转告" in t for t in told), told
