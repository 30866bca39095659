"""Malformed or unexpected events are rejected with a reason and never stop the bot."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.events import LocationShared, MemberJoined, MessageReceived, Person
from scheduler.clock import SHANGHAI
from tests.support import ROOT, bot_settings, make_rig

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)


def rig(tmp_path: Path):  # noqa: ANN201
    return make_rig(bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"}), NOW)


async def test_a_location_that_is_not_a_place_gets_a_polite_retry(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    await r.bot.handle(LocationShared(NOW, Person("u1", "张三"), float("nan"), 113.9))
    await r.bot.handle(LocationShared(NOW.replace(second=5), Person("u1", "张三"), 91.0, 113.9))
    await r.advance_to(NOW.replace(minute=1))
    texts = [x["text"] for x in r.records()]
    assert len(texts) == 2 and all("重新发送" in t for t in texts)


async def test_a_join_in_an_unknown_room_is_ignored_and_the_bot_goes_on(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.bot.handle(MemberJoined(NOW, "not-a-welfare-group", (Person("u1", "张三"),)))
    r.gateway.add_contact("u2", "李四")
    r.gateway.join("sz-nanshan-kjy", ["u2"])
    await r.advance_to(NOW.replace(minute=1))
    assert [x["mentions"] for x in r.records()] == [["u2"]]


async def test_the_bots_own_messages_are_never_answered(tmp_path: Path) -> None:
    r = rig(tmp_path)
    own = MessageReceived(
        NOW, Person("bot", "群福助手"), "@群福助手 年费", "sz-nanshan-kjy", ("bot",)
    )
    await r.bot.handle(own)
    await r.advance_to(NOW.replace(minute=1))
    assert r.records() == []


async def test_the_same_message_delivered_twice_is_answered_once(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    ask = MessageReceived(
        NOW,
        Person("u1", "张三"),
        "@群福助手 年费怎么减免",
        "sz-nanshan-kjy",
        ("bot",),
        message_id="m-1",
    )
    await r.bot.handle(ask)
    await r.bot.handle(ask)
    await r.advance_to(NOW.replace(minute=1))
    answers = [x for x in r.records() if "年费" in x["text"]]
    assert len(answers) == 1


async def test_a_question_the_faq_cannot_answer_goes_to_the_groups_manager(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    r.gateway.add_contact("wxid_cm_li", "李经理")
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    r.gateway.say("u1", "@群福助手 你们银行几点下班", "sz-nanshan-kjy", ["bot"])
    await r.advance_to(NOW.replace(minute=1))
    reply = [x for x in r.records() if "转交" in x["text"]]
    assert len(reply) == 1 and "李经理" in reply[0]["text"] and reply[0]["mentions"] == ["u1"]
    ticket = [x for x in r.records() if x["to"] == "contact:wxid_cm_li"]
    assert len(ticket) == 1 and "几点下班" in ticket[0]["text"]


def test_the_pipeline_runs_in_the_order_the_design_sets(tmp_path: Path) -> None:
    r = rig(tmp_path)
    names = [h.name for h in r.bot.dispatcher.handlers]
    assert names == [
        "membership",
        "moderation",
        "command:optout",
        "command:join",
        "command:my-referrals",
        "command:leaderboard",
        "command:lottery",
        "tickets",
        "entry-flow",
        "faq",
        "command:help",
    ]
    assert [h.name for h in r.bot.dispatcher.handlers if h.always] == ["membership"]


async def test_an_ad_in_a_group_is_warned_about_by_rule_and_never_answered(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    await r.advance_to(NOW.replace(minute=1))
    ad = "@群福助手 专业代还信用卡 年费 加v: daihuan888"
    r.gateway.say("u1", ad, "sz-nanshan-kjy", ["bot"])
    await r.advance_to(NOW.replace(minute=2))
    said = [x for x in r.records() if x["at"] >= NOW.replace(minute=1).isoformat()]
    assert len(said) == 1  # the warning, and no FAQ answer about 年费
    assert "禁止发布信用卡代还广告" in said[0]["text"] and said[0]["mentions"] == ["u1"]
    assert "daihuan888" not in said[0]["text"] and "代还信用卡" not in said[0]["text"]


async def test_a_question_with_a_phone_number_is_warned_about_and_still_answered(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    await r.advance_to(NOW.replace(minute=1))
    r.gateway.say("u1", "@群福助手 年费怎么减免 我电话13812345678", "sz-nanshan-kjy", ["bot"])
    await r.advance_to(NOW.replace(minute=2))
    texts = [x["text"] for x in r.records() if x["at"] >= NOW.replace(minute=1).isoformat()]
    assert any("手机号码" in t and "撤回" in t for t in texts)
    assert any("年费" in t for t in texts)
    assert not any("13812345678" in t for t in texts)


async def test_the_groups_manager_is_not_moderated(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("wxid_cm_li", "李经理")
    r.gateway.add_contact("u1", "张三")
    r.gateway.join("sz-nanshan-kjy", ["wxid_cm_li", "u1"])
    await r.advance_to(NOW.replace(minute=1))
    for sender in ("wxid_cm_li", "u1"):
        r.gateway.say(sender, "办卡提额找我，加v: cmli2026", "sz-nanshan-kjy")
    await r.advance_to(NOW.replace(minute=2))
    warned = [x["mentions"] for x in r.records() if x["at"] >= NOW.replace(minute=1).isoformat()]
    assert warned == [["u1"]]  # the same words from a member are an ad


async def test_an_invite_code_with_a_join_word_goes_to_the_entry_flow(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    r.gateway.say("u1", "进群 K7M2QX")
    await r.advance_to(NOW.replace(minute=1))
    texts = [x["text"] for x in r.records()]
    assert len(texts) == 1 and "没有找到入群码 K7M2QX" in texts[0]


async def test_an_event_costs_only_a_few_database_calls(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.gateway.add_contact("u1", "张三")
    ctx = r.bot.dispatcher.ctx
    before = ctx.db_calls
    await r.bot.handle(LocationShared(NOW, Person("u1", "张三"), 22.5405, 113.9345))
    assert ctx.db_calls - before == 2  # the person's groups with the placement, the reply
    before = ctx.db_calls
    ask = MessageReceived(NOW, Person("u1", "张三"), "@群福助手 年费", "sz-nanshan-kjy", ("bot",))
    await r.bot.handle(ask)
    assert ctx.db_calls - before == 1  # moderation reads memory; the answer is one write
