"""Restoring the simulated rooms after a restart: exactly who the database says, read as
streamed plain rows (never one ORM object per membership), or a room at a time on first use
when there are more memberships than are worth reading at start (issue 8, lean reads)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.console import TerminalConsole
from bot.events import Person
from bot.gateways.simulator import UnknownPeer
from bot.opsdata.models import Location, WelfareGroup
from bot.runner import restore_rooms
from db.models import Membership, PersonRow, WelfareGroupRow
from db.repositories import GroupRepo, MembershipRepo
from scheduler.clock import SHANGHAI
from tests.support import ROOT, bot_settings, make_rig

A, B, C = "sz-nanshan-kjy", "sz-nanshan-kjy-2", "sz-nanshan-szu"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def rig_at(tmp_path: Path, start: str):  # noqa: ANN201
    settings = bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"})
    return make_rig(settings, at(start))


class OrmLoads:
    """Counts ORM objects built from rows of the given tables while active."""

    def __init__(self, *models: type) -> None:
        self.count = 0
        self._models = models

    def _on_load(self, _target: object, _context: object) -> None:
        self.count += 1

    def __enter__(self) -> OrmLoads:
        for m in self._models:
            event.listen(m, "load", self._on_load)
        return self

    def __exit__(self, *_exc: object) -> None:
        for m in self._models:
            event.remove(m, "load", self._on_load)


async def a_day_of_joins_and_leaves(tmp_path: Path) -> dict[str, set[str]]:
    """A first run: people join three groups, one leaves, one leaves and comes back."""
    first = rig_at(tmp_path, "2026-12-01T10:00")
    for uid, name in (("u1", "张三"), ("u2", "李四"), ("u3", "王五"), ("u4", "赵六")):
        first.gateway.add_contact(uid, name)
    first.gateway.join(A, ["u1", "u2", "u3"])
    first.gateway.join(B, ["u2", "u4"])
    first.gateway.join(C, ["u4"])
    await first.advance_to(at("2026-12-01T10:01"))
    first.gateway.leave(A, ["u2"])
    first.gateway.leave(C, ["u4"])
    await first.advance_to(at("2026-12-01T10:02"))
    first.gateway.join(C, ["u4"])
    await first.advance_to(at("2026-12-01T10:03"))
    first.bot.close()
    return {A: {"u1", "u3"}, B: {"u2", "u4"}, C: {"u4"}}


def occupied(gateway) -> dict[str, set[str]]:  # noqa: ANN001
    return {rid: set(r.members) for rid, r in gateway.rooms.items() if r.members}


async def test_a_restart_restores_exactly_the_rooms_from_streamed_plain_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await a_day_of_joins_and_leaves(tmp_path)
    second = rig_at(tmp_path, "2026-12-01T11:00")
    batches: list[int] = []
    stream = MembershipRepo.stream_current

    def spy(self: MembershipRepo, batch: int = 2000) -> Iterator[tuple[str, str, str]]:
        batches.append(batch)
        return stream(self, batch)

    monkeypatch.setattr(MembershipRepo, "stream_current", spy)
    with OrmLoads(Membership, PersonRow) as loads:
        assert restore_rooms(second.gateway, second.bot) == 5
    assert loads.count == 0  # plain rows only: no ORM object per membership
    assert batches and all(0 < b <= 10_000 for b in batches)  # read in bounded batches
    assert occupied(second.gateway) == expected
    assert second.gateway.person("u3").name == "王五"


def test_the_stream_gives_plain_rows_a_batch_at_a_time(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00")
    repo = rig.bot.memberships
    for i in range(7):
        repo.join(A, Person(f"p{i}", f"人{i}"), at(f"2026-12-01T10:0{i}"))
    with OrmLoads(Membership, PersonRow) as loads:
        rows = list(repo.stream_current(batch=3))
    assert loads.count == 0
    assert rows == [(A, f"p{i}", f"人{i}") for i in range(7)]
    assert all(type(r) is not Membership for r in rows)
    assert repo.count_current() == 7


async def test_past_the_limit_rooms_are_read_one_at_a_time_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await a_day_of_joins_and_leaves(tmp_path)
    second = rig_at(tmp_path, "2026-12-01T11:00")

    def whole_table(*_a: object, **_k: object) -> None:
        raise AssertionError("the whole membership table was read")

    monkeypatch.setattr(MembershipRepo, "current", whole_table)
    monkeypatch.setattr(MembershipRepo, "stream_current", whole_table)
    assert restore_rooms(second.gateway, second.bot, eager_limit=2) == 5
    assert not any(r.loaded for r in second.gateway.rooms.values() if r.id in expected)
    # Someone restored is known by id before their room was read, and may speak in it.
    assert second.gateway.person("u3").name == "王五"
    second.gateway.say("u3", "大家好", room_id=A)
    assert second.gateway.rooms[A].loaded and not second.gateway.rooms[B].loaded
    with pytest.raises(UnknownPeer):
        second.gateway.person("nobody")
    with pytest.raises(UnknownPeer):
        second.gateway.say("u4", "我不在这个群", room_id=A)
    # Already in: no join event; gone: a leave is an event and the count follows it.
    assert second.gateway.join(B, ["u2"]).members == ()
    second.gateway.leave(B, ["u4"])
    await second.advance_to(at("2026-12-01T11:01"))
    assert MembershipRepo(second.bot.engine).members_of(B) == [second.gateway.person("u2")]
    assert {rid: set(second.gateway.rooms[rid].members) for rid in expected} == {
        **expected,
        B: {"u2"},
    }


async def test_the_console_lists_only_rooms_read_so_far(tmp_path: Path) -> None:
    await a_day_of_joins_and_leaves(tmp_path)
    second = rig_at(tmp_path, "2026-12-01T11:00")
    restore_rooms(second.gateway, second.bot, eager_limit=0)
    console = TerminalConsole(second.gateway)
    listing = console.command("who") or ""
    assert "restored from the database" in listing
    assert not any(r.loaded for r in second.gateway.rooms.values())
    assert "张三 (u1)" in (console.command(f"who {A}") or "")
    assert (console.command("who") or "").startswith(A)


def test_syncing_the_directory_writes_in_bulk_without_orm_objects(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00")
    groups = GroupRepo(rig.bot.engine)

    def group(i: int, name: str = "") -> WelfareGroup:
        return WelfareGroup(
            id=f"bulk-{i}",
            name=name or f"测试{i}群",
            city="深圳",
            location=Location(lat=22.5 + i / 100, lon=114.0),
            members=i,
        )

    with OrmLoads(WelfareGroupRow) as loads:
        assert groups.sync([group(i) for i in range(50)]) == (50, 0)
        assert groups.sync([group(i, "改名" if i == 7 else "") for i in range(50)]) == (0, 1)
        assert groups.sync([group(i, "改名" if i == 7 else "") for i in range(50)]) == (0, 0)
    assert loads.count == 0
    row = groups.get("bulk-7")
    assert row is not None and row.name == "改名" and row.member_count == 7


def test_waiting_welcomes_are_found_through_their_own_index(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, "2026-12-01T10:00")
    with rig.bot.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT group_id, min(joined_at) FROM membership "
            "WHERE left_at IS NULL AND welcomed_at IS NULL GROUP BY group_id"
        ).all()
    assert "ix_membership_unwelcomed" in " ".join(str(r[-1]) for r in plan)
