"""The terminal console of `qunfu run`: typed commands say plainly what happened, refuse what
cannot happen, and show who is in each room."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from rich.console import Console

from bot.console import HELP, TerminalConsole
from bot.events import MemberJoined, MemberLeft, MessageReceived
from bot.gateways.simulator import SimulatorGateway
from scheduler.clock import SHANGHAI, VirtualClock

ROOM = "sz-nanshan-kjy"


@pytest.fixture
def console() -> TerminalConsole:
    gateway = SimulatorGateway(VirtualClock(datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)))
    gateway.add_room(ROOM, "深圳南山科技园福利1群")
    gateway.add_room("sz-futian-cbd", "深圳福田CBD福利1群")
    return TerminalConsole(gateway, Console(file=io.StringIO(), width=200))


def events(console: TerminalConsole) -> list[object]:
    return list(console.gateway.inputs)


@pytest.mark.parametrize(
    "line",
    [f"join {ROOM} u9", "say u9 我要进群", f"say u9 @{ROOM} 你好", "loc u9 22.54 113.93"],
)
def test_an_unknown_contact_is_refused_with_the_command_that_adds_one(
    console: TerminalConsole, line: str
) -> None:
    reply = console.command(line)
    assert reply is not None and reply.startswith("rejected: unknown contact 'u9'")
    assert "`contact u9 NAME`" in reply
    assert events(console) == []
    assert "u9" not in console.gateway.contacts


def test_a_second_join_is_refused_and_makes_no_second_join_event(
    console: TerminalConsole,
) -> None:
    console.command("contact u1 张三")
    assert console.command(f"join {ROOM} u1") == f"u1 joined {ROOM}"
    reply = console.command(f"join {ROOM} u1")
    assert reply == f"rejected: u1 already in {ROOM}; nobody joined"
    joins = [e for e in events(console) if isinstance(e, MemberJoined)]
    assert len(joins) == 1


def test_a_join_of_several_names_the_ones_already_in(console: TerminalConsole) -> None:
    console.command("contact u1 张三")
    console.command("contact u2 李四")
    console.command(f"join {ROOM} u1")
    assert console.command(f"join {ROOM} u1 u2 u2") == (
        f"u2 joined {ROOM} (u1 already in it, skipped)"
    )
    last = events(console)[-1]
    assert isinstance(last, MemberJoined) and [p.id for p in last.members] == ["u2"]


def test_leaving_a_room_one_is_not_in_is_refused(console: TerminalConsole) -> None:
    console.command("contact u1 张三")
    console.command(f"join {ROOM} u1")
    reply = console.command("leave sz-futian-cbd u1")
    assert reply is not None and reply.startswith("rejected: u1 not in sz-futian-cbd")
    assert not [e for e in events(console) if isinstance(e, MemberLeft)]
    assert console.command(f"leave {ROOM} u1") == f"u1 left {ROOM}"
    assert console.command(f"leave {ROOM} u1") is not None
    assert len([e for e in events(console) if isinstance(e, MemberLeft)]) == 1


def test_an_unknown_room_is_refused_with_where_to_look(console: TerminalConsole) -> None:
    console.command("contact u1 张三")
    reply = console.command("join sz-nowhere u1")
    assert reply is not None and "unknown room 'sz-nowhere'" in reply and "rooms" in reply


def test_who_and_rooms_show_who_is_in_each_room(console: TerminalConsole) -> None:
    console.command("contact u1 张三")
    console.command("contact u2 李四")
    console.command(f"join {ROOM} u1 u2")
    who = console.command("who")
    assert who == f"{ROOM}  深圳南山科技园福利1群  2: 张三 (u1), 李四 (u2)"
    assert console.command(f"who {ROOM}") == who
    rooms = console.command("rooms")
    assert rooms is not None
    assert rooms.splitlines() == [who, "sz-futian-cbd  深圳福田CBD福利1群  0: —"]
    assert "who [ROOM]" in HELP and "rooms" in HELP


def test_the_bot_itself_cannot_be_played(console: TerminalConsole) -> None:
    reply = console.command("contact bot 冒充")
    assert reply is not None and reply.startswith("rejected")
    assert console.gateway.contacts["bot"].name == "群福助手"


def test_typed_lines_stay_text(console: TerminalConsole) -> None:
    console.command("contact u1 张三")
    console.command(f"join {ROOM} u1")
    assert console.command(f"say u1 @{ROOM} '{{{{ 7*7 }}}}'") is None
    said = events(console)[-1]
    assert isinstance(said, MessageReceived) and said.text == "{{ 7*7 }}"
    assert console.command("loc u1 north 113") == (
        "rejected: LAT and LON must be numbers, got 'north' '113'"
    )


def test_the_gateway_ignores_a_scripted_second_join_and_a_leave_of_a_stranger() -> None:
    """The scenario contract: a `join` step for someone already in the room is no new event."""
    gateway = SimulatorGateway(VirtualClock(datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)))
    gateway.add_room(ROOM)
    gateway.add_contact("u1")
    gateway.join(ROOM, ["u1"])
    gateway.join(ROOM, ["u1"])
    gateway.leave(ROOM, ["u2"])
    assert [type(e).__name__ for e in gateway.pending_events()] == ["MemberJoined"]
