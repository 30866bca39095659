"""Routing that respects people, in the private chat: a whole bot on the simulator.

Stories from issue 7: a member is never offered the group they are in; "no group near you" and
"every group near you is full" are different answers; a promise to notify is kept, once, when
a group with room opens (added to the directory, or a member leaves a full group), also across
a restart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from bot.events import MemberLeft
from bot.handlers.entry import RouteOffers
from db.models import OutboxRow, WaitlistEntry, WelfareGroupRow
from scheduler.clock import SHANGHAI, VirtualClock
from tests.support import ROOT, BotRig, bot_settings, copy_ops, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
KJY = (22.5405, 113.9345)  # GCJ-02, 深圳南山科技园: groups kjy (186/500), szu, kjy-2 (full)
LONGGANG = (22.7205, 114.2475)  # GCJ-02, 深圳龙岗区: no group within 5 km
XIXIANG = (22.5790, 113.8650)  # GCJ-02, next to sz-baoan-xx, the only group within 5 km

NEW_LONGGANG_GROUP = """
  - id: sz-longgang-dy
    name: 深圳龙岗大运福利群
    city: 深圳
    district: 龙岗区
    location: {lat: 22.7180, lon: 114.2450, crs: gcj02}
    capacity: 500
    members: 12
    manager: cm-li
"""


def _rig(base: Path, db: Path, clock: VirtualClock | None = None) -> BotRig:
    settings = bot_settings(base, database={"url": f"sqlite:///{db}"})
    r = make_rig(settings, clock.now() if clock else T0, clock)
    for cid, name in (("u1", "张三"), ("u2", "李四")):
        r.gateway.add_contact(cid, name)
    return r


def _texts_to(r: BotRig, contact: str) -> list[str]:
    return [x["text"] for x in r.records() if x["to"] == f"contact:{contact}"]


def _invites(r: BotRig) -> list[tuple[str, str]]:
    return [(x["room"], x["contact"]) for x in r.records() if x["action"] == "invite"]


def _set_members(r: BotRig, group_id: str, count: int) -> None:
    with Session(r.bot.engine) as s:
        row = s.get(WelfareGroupRow, group_id)
        assert row is not None
        row.member_count = count
        s.add(row)
        s.commit()
    r.bot.member_counts.reload()  # live counts are kept in memory


def _waitlist_sends(r: BotRig) -> list[OutboxRow]:
    with Session(r.bot.engine) as s:
        rows = s.exec(select(OutboxRow).where(OutboxRow.key.startswith("waitlist:")))  # type: ignore[attr-defined]
        return list(rows)


def _waiting(r: BotRig, contact: str) -> list[WaitlistEntry]:
    return r.bot.waitlist_repo.of_contact(contact)


async def _step(r: BotRig, seconds: int = 10) -> None:
    await r.advance_to(r.clock.now() + timedelta(seconds=seconds))


# --- a member is never offered their own group ------------------------------------------------


async def test_a_member_is_told_they_are_in_and_offered_the_others(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    await _step(r)
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    (answer,) = _texts_to(r, "u1")
    # Observed: option 1 was the member's own group at "0米", and "1" invited them again.
    assert answer.startswith("您已在「深圳南山科技园福利1群」中")
    assert "1. 深圳南山深大福利群" in answer and "0米" not in answer
    assert answer.count("深圳南山科技园福利1群") == 1
    r.gateway.say("u1", "1")
    await _step(r)
    assert _invites(r) == [("sz-nanshan-szu", "u1")]


async def test_a_member_asking_to_join_is_told_at_once_which_group_they_are_in(
    tmp_path: Path,
) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.say("u1", "我要进群")
    r.gateway.join("sz-nanshan-kjy", ["u2"])
    await _step(r)
    r.gateway.join("sz-nanshan-kjy", ["u1"])
    await _step(r)
    r.gateway.say("u1", "我要进群")
    r.gateway.say("u2", "怎么加群")
    await _step(r)
    first, second = _texts_to(r, "u1")
    assert first.startswith("欢迎！请点击「+」→「位置」") and "您已在" not in first
    assert second == (
        "您已在「深圳南山科技园福利1群」中，无需重复加入。"
        "如需加入附近其他福利群，请点击「+」→「位置」发送您的位置。"
    )
    assert _texts_to(r, "u2")[-1].startswith("您已在「深圳南山科技园福利1群」中")


async def test_a_number_sent_a_day_after_the_offer_is_no_pick(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    await _step(r, 24 * 3600 + 60)
    r.gateway.say("u1", "1")
    await _step(r)
    assert _invites(r) == []
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    r.gateway.say("u1", "1")
    await _step(r)
    assert _invites(r) == [("sz-nanshan-kjy", "u1")]


def test_route_offers_keep_only_the_most_recent_people() -> None:
    offers = RouteOffers(limit=3)
    for i in range(5):
        offers.put(f"p{i}", [f"g{i}"], T0 + timedelta(minutes=i))
    now = T0 + timedelta(minutes=10)
    assert [offers.get(f"p{i}", now) for i in range(5)] == [None, None, ["g2"], ["g3"], ["g4"]]
    offers.put("p2", ["g9"], now)  # a new offer replaces the old and is the newest again
    offers.put("p5", ["g5"], now)
    assert offers.get("p2", now) == ["g9"] and offers.get("p3", now) is None


async def test_a_pick_of_a_group_joined_since_the_offer_is_not_invited(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.share_location("u1", *KJY)
    await _step(r)
    assert "1. 深圳南山科技园福利1群" in _texts_to(r, "u1")[0]
    r.gateway.join("sz-nanshan-kjy", ["u1"])  # scanned the code meanwhile
    r.gateway.say("u1", "1")
    await _step(r)
    assert _invites(r) == []
    assert _texts_to(r, "u1")[-1] == "您已在「深圳南山科技园福利1群」中，无需重复加入。"


# --- no group near you is not "all full" ------------------------------------------------------


async def test_no_group_nearby_is_said_plainly_and_the_person_is_put_on_the_waitlist(
    tmp_path: Path,
) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.share_location("u1", *LONGGANG)
    await _step(r)
    (answer,) = _texts_to(r, "u1")
    # Observed: "附近5.0公里内的福利群已满员…新群开通后会第一时间通知您", and nobody recorded.
    assert answer.startswith("您附近5公里内还没有福利群。") or "内还没有福利群" in answer
    assert "满员" not in answer
    assert "已为您登记" in answer and "1. " in answer  # and the nearest groups beyond
    (row,) = _waiting(r, "u1")
    assert row.notified_at is None and row.area.startswith("grid:") and row.channel == "chat"


async def test_every_group_nearby_full_is_a_different_answer(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    _set_members(r, "sz-baoan-xx", 500)
    r.gateway.share_location("u1", *XIXIANG)
    await _step(r)
    (answer,) = _texts_to(r, "u1")
    assert "内的1个福利群都已满员" in answer and "还没有" not in answer
    assert "已为您登记" in answer
    assert len(_waiting(r, "u1")) == 1


async def test_asking_twice_from_the_same_area_keeps_one_waitlist_row(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.share_location("u1", *LONGGANG)
    await _step(r)
    r.gateway.share_location("u1", LONGGANG[0] + 0.0005, LONGGANG[1])
    await _step(r)
    assert len(_waiting(r, "u1")) == 1


async def test_a_member_nearby_is_not_promised_anything(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    r.gateway.join("sz-baoan-xx", ["u1"])
    await _step(r)
    r.gateway.share_location("u1", *XIXIANG)
    await _step(r)
    answer = _texts_to(r, "u1")[-1]
    assert answer.startswith("您已在「深圳宝安西乡福利群」中")
    assert "内还没有其他福利群" in answer and "登记" not in answer
    assert _waiting(r, "u1") == []


# --- the promise is kept, once ----------------------------------------------------------------


async def test_a_group_added_to_the_directory_tells_the_waiting_once(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    r = _rig(base, tmp_path / "q.db")
    r.gateway.share_location("u1", *LONGGANG)
    r.gateway.share_location("u2", *KJY)  # served: not waiting
    await _step(r)
    groups = base / "campaigns" / "groups.yaml"
    groups.write_text(groups.read_text(encoding="utf-8") + NEW_LONGGANG_GROUP, encoding="utf-8")
    assert r.bot.reload() == []
    r.gateway.add_room("sz-longgang-dy", "深圳龙岗大运福利群")
    await _step(r)
    told = [t for t in _texts_to(r, "u1") if t.startswith("好消息")]
    assert len(told) == 1 and "「深圳龙岗大运福利群」" in told[0]
    assert not any(t.startswith("好消息") for t in _texts_to(r, "u2"))
    (row,) = _waiting(r, "u1")
    assert row.notified_at is not None and row.notified_group == "sz-longgang-dy"

    # Touching the file again, and a restart on the same database, tell nobody again.
    groups.write_text(groups.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    r.bot.reload()
    await _step(r)
    r.bot.close()
    again = _rig(base, tmp_path / "q.db", VirtualClock(r.clock.now()))
    await _step(again, 60)
    assert len(_waitlist_sends(again)) == 1
    assert again.records() == []
    again.bot.close()


async def test_a_group_added_while_the_bot_was_down_is_announced_at_start(
    tmp_path: Path,
) -> None:
    base = copy_ops(tmp_path)
    r = _rig(base, tmp_path / "q.db")
    r.gateway.share_location("u1", *LONGGANG)
    await _step(r)
    r.bot.close()
    groups = base / "campaigns" / "groups.yaml"
    groups.write_text(groups.read_text(encoding="utf-8") + NEW_LONGGANG_GROUP, encoding="utf-8")
    later = _rig(base, tmp_path / "q.db", VirtualClock(r.clock.now() + timedelta(hours=1)))
    await _step(later)
    assert [t for t in _texts_to(later, "u1") if t.startswith("好消息")]
    later.bot.close()
    once_more = _rig(base, tmp_path / "q.db", VirtualClock(later.clock.now()))
    await _step(once_more)
    assert once_more.records() == [] and len(_waitlist_sends(once_more)) == 1
    once_more.bot.close()


async def test_a_leave_from_a_full_group_tells_the_waiting_once(tmp_path: Path) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    _set_members(r, "sz-baoan-xx", 500)
    r.gateway.share_location("u1", *XIXIANG)
    await _step(r)
    await r.bot.handle(MemberLeft(r.clock.now(), "sz-baoan-xx", ("m-1",)))
    await _step(r)
    told = [t for t in _texts_to(r, "u1") if t.startswith("好消息")]
    assert len(told) == 1 and "「深圳宝安西乡福利群」" in told[0]

    # Another leave (no crossing from full), and a refill and a leave again: no second message.
    await r.bot.handle(MemberLeft(r.clock.now(), "sz-baoan-xx", ("m-2",)))
    _set_members(r, "sz-baoan-xx", 500)
    await r.bot.handle(MemberLeft(r.clock.now(), "sz-baoan-xx", ("m-3",)))
    await _step(r)
    assert len([t for t in _texts_to(r, "u1") if t.startswith("好消息")]) == 1

    # A restart on the same database sends nothing again.
    r.bot.close()
    again = _rig(ROOT, tmp_path / "q.db", VirtualClock(r.clock.now()))
    _set_members(again, "sz-baoan-xx", 500)
    await again.bot.handle(MemberLeft(again.clock.now(), "sz-baoan-xx", ("m-4",)))
    await _step(again, 60)
    assert again.records() == [] and len(_waitlist_sends(again)) == 1
    again.bot.close()


async def test_a_leave_from_a_group_with_room_does_not_look_at_the_waitlist(
    tmp_path: Path,
) -> None:
    r = _rig(ROOT, tmp_path / "q.db")
    _set_members(r, "sz-baoan-xx", 500)
    r.gateway.share_location("u1", *XIXIANG)
    await _step(r)
    looked: list[object] = []
    real = r.bot.waitlist.opened
    r.bot.waitlist.opened = lambda *a, **k: looked.append(a) or real(*a, **k)  # type: ignore[method-assign]
    r.gateway.join("sz-nanshan-kjy", ["u2"])
    await _step(r)
    r.gateway.leave("sz-nanshan-kjy", ["u2"])  # 186 → 187 → 186 of 500: never full
    await _step(r)
    assert looked == []
