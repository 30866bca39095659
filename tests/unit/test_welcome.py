"""Batched welcomes: one message per batch, leavers excluded, restarts lose nobody."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.clock import SHANGHAI
from tests.support import ROOT, bot_settings, make_rig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def rig_at(tmp_path: Path, start: str, **overrides):  # noqa: ANN003, ANN201
    settings = bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"}, **overrides)
    return make_rig(settings, at(start))


async def test_someone_who_leaves_inside_the_window_is_not_welcomed(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00")
    for uid, name in (("u1", "张三"), ("u2", "李四")):
        rig.gateway.add_contact(uid, name)
    rig.gateway.join("sz-nanshan-kjy", ["u1", "u2"])
    await rig.advance_to(at("2026-12-01T10:00:03"))
    rig.gateway.leave("sz-nanshan-kjy", ["u2"])
    await rig.advance_to(at("2026-12-01T10:01"))
    assert [r["mentions"] for r in rig.records()] == [["u1"]]


async def test_the_window_is_configurable(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00", welcome={"batch_window": "2m"})
    for uid in ("u1", "u2"):
        rig.gateway.add_contact(uid, uid)
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.advance_to(at("2026-12-01T10:01:30"))
    assert rig.records() == []
    rig.gateway.join("sz-nanshan-kjy", ["u2"])
    await rig.advance_to(at("2026-12-01T10:03"))
    records = rig.records()
    assert [r["mentions"] for r in records] == [["u1", "u2"]]
    assert records[0]["at"] == "2026-12-01T10:02:00+08:00"


async def test_a_restart_inside_the_window_loses_nobody(tmp_path: Path) -> None:
    first = rig_at(tmp_path, "2026-12-01T10:00")
    first.gateway.add_contact("u1", "张三")
    first.gateway.join("sz-nanshan-kjy", ["u1"])
    await first.advance_to(at("2026-12-01T10:00:05"))
    first.bot.close()
    second = rig_at(tmp_path, "2026-12-01T10:00:20")
    await second.advance_to(at("2026-12-01T10:01"))
    assert [r["mentions"] for r in second.records()] == [["u1"]]
    assert "欢迎加入「深圳南山科技园福利1群」" in second.records()[0]["text"]


async def test_a_group_without_a_welcome_campaign_gets_none(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00", welcome={"campaign": "no-such-welcome"})
    rig.gateway.add_contact("u1", "张三")
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.advance_to(at("2026-12-01T10:01"))
    assert rig.records() == []


async def test_a_simulator_restart_remembers_who_is_in_the_groups(tmp_path: Path) -> None:
    from bot.runner import restore_rooms

    first = rig_at(tmp_path, "2026-12-01T10:00")
    first.gateway.add_contact("u1", "张三")
    first.gateway.join("sz-nanshan-kjy", ["u1"])
    await first.advance_to(at("2026-12-01T10:01"))
    first.bot.close()

    second = rig_at(tmp_path, "2026-12-01T11:00")
    assert restore_rooms(second.gateway, second.bot) == 1
    assert second.gateway.join("sz-nanshan-kjy", ["u1"]).members == ()  # already in: no event
    second.gateway.leave("sz-nanshan-kjy", ["u1"])
    await second.advance_to(at("2026-12-01T11:01"))
    assert second.bot.groups.member_counts()["sz-nanshan-kjy"] == 186


async def test_processes_divide_welcomes_by_the_accounts_they_hold(tmp_path: Path) -> None:
    """Several processes on one database (PostgreSQL): each used to welcome every group, so
    all did the same work and only the outbox keys kept the welcome single. A process now
    welcomes only in groups whose account it holds; the other group's batch waits for its
    holder."""
    rig = rig_at(
        tmp_path,
        "2026-12-01T10:00",
        accounts=[{"id": "bot-a"}, {"id": "bot-b"}],
    )
    book = rig.bot.accounts
    by_account = {book.map.for_group(g): g for g in sorted(rig.bot.ops.groups)}
    assert sorted(by_account) == ["bot-a", "bot-b"]  # balanced over the two accounts
    ours, theirs = "bot-a", "bot-b"
    book.held = lambda: frozenset({ours})  # this process holds one lease
    for uid in ("u1", "u2"):
        rig.gateway.add_contact(uid, uid)
    rig.gateway.join(by_account[ours], ["u1"])
    rig.gateway.join(by_account[theirs], ["u2"])
    await rig.advance_to(at("2026-12-01T10:01"))
    assert [r["mentions"] for r in rig.records()] == [["u1"]]
    assert rig.bot.memberships.pending_welcome_groups()[0][0] == by_account[theirs]
    book.held = lambda: frozenset({ours, theirs})  # it takes the other lease over
    await rig.advance_to(at("2026-12-01T10:02"))
    assert sorted(r["mentions"][0] for r in rig.records()) == ["u1", "u2"]
