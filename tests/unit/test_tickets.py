"""Tickets: numbering, commands, business-hours arithmetic, context kept bounded and masked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import BusinessHours
from bot.events import Person
from bot.opsdata.models import Location, WelfareGroup
from bot.tickets import BusinessClock, ChatContext, masked_name, parse_command
from db.repositories import GroupRepo, MembershipRepo
from db.session import make_engine, upgrade
from db.ticket_repositories import TicketRepo
from scheduler.clock import SHANGHAI

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=SHANGHAI)  # a Friday evening
HOURS = BusinessClock(BusinessHours(enabled=True, start=time(9), end=time(18)))


def _values(key: str) -> dict[str, object]:
    return {
        "key": key,
        "group_id": "g1",
        "member_id": "u1",
        "created_at": T0,
        "waiting_since": T0,
        "sla_due_at": T0,
    }


def test_ticket_numbers_are_unique_and_an_event_opens_one_ticket(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    repo = TicketRepo(make_engine(url))
    with ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(lambda i: repo.open(_values(f"msg:{i % 20}")), range(40)))
    by_key = {t.key: t.number for t, _ in opened}
    assert len(by_key) == 20 and len(set(by_key.values())) == 20  # one number per key
    assert all(by_key[t.key] == t.number for t, _ in opened)
    assert sum(new for _, new in opened) == 20
    # An event handled again (no race) burns no number: the next ticket follows on.
    first = repo.open(_values("msg:new"))[0].number
    assert repo.open(_values("msg:new"))[0].number == first
    assert repo.open(_values("msg:newer"))[0].number == first + 1


def test_a_resolved_ticket_is_resolved_once_and_takes_no_answer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    repo = TicketRepo(make_engine(url))
    ticket, _ = repo.open(_values("msg:a"))
    assert repo.answered(ticket.number, T0)
    assert repo.resolve(ticket.number, "cm", T0) and not repo.resolve(ticket.number, "cm", T0)
    assert not repo.answered(ticket.number, T0)
    again = repo.get(ticket.number)
    assert again is not None and again.first_response_at == T0 and again.status == "resolved"


def test_manager_commands_are_parsed() -> None:
    assert parse_command("#12 您好，可以的") == (12, "您好，可以的")
    assert parse_command("＃12关闭") == (12, "关闭")
    assert parse_command(" 工单 ") == "list"
    assert parse_command("#") is None and parse_command("你好") is None
    assert parse_command("#3") == (3, "")


def test_sla_time_waits_for_business_hours() -> None:
    assert HOURS.next_open(T0) == datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)
    assert HOURS.add(T0, timedelta(minutes=30)) == datetime(2026, 12, 7, 9, 30, tzinfo=SHANGHAI)
    late = datetime(2026, 12, 7, 17, 50, tzinfo=SHANGHAI)
    assert HOURS.add(late, timedelta(minutes=30)) == datetime(2026, 12, 8, 9, 20, tzinfo=SHANGHAI)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.integers(min_value=1, max_value=3 * 24 * 60),
)
def test_business_time_added_is_exactly_the_span_inside_hours(
    start: datetime, minutes: int
) -> None:
    at = start.replace(second=0, microsecond=0, tzinfo=SHANGHAI)
    due = HOURS.add(at, timedelta(minutes=minutes))
    assert HOURS.is_open(due - timedelta(seconds=1)) and due > at
    # Walking minute by minute inside hours gives the same span (the oracle).
    t, counted = HOURS.next_open(at), 0
    while t < due:
        counted += HOURS.is_open(t)
        t += timedelta(minutes=1)
    assert counted == minutes


def test_without_business_hours_sla_time_is_clock_time() -> None:
    always = BusinessClock(BusinessHours())
    assert always.is_open(T0) and always.add(T0, timedelta(hours=1)) == T0 + timedelta(hours=1)


def test_context_is_bounded_masked_and_per_group() -> None:
    ctx = ChatContext(size=3, max_groups=2)
    for i in range(5):
        ctx.record("g1", Person("u1", "张三"), f"第{i}条 电话13812345678")
    ctx.record("g2", Person("u2", "李四"), "hi")
    ctx.record("g3", Person("u3", "王五"), "hello")
    lines = ctx.recent("g1")
    assert ctx.recent("g1") == () or len(lines) <= 3
    assert ctx.recent("g3") and len(ctx.recent("g2")) == 1
    assert not any("13812345678" in line for g in ("g1", "g2", "g3") for line in ctx.recent(g))


def test_members_are_masked_for_managers() -> None:
    shown = masked_name(Person("wxid_abcdef123", "张三丰"))
    assert shown.startswith("张*") and "三丰" not in shown and "abcdef" not in shown


def test_a_member_has_left_only_when_the_ledger_shows_them_gone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    engine = make_engine(url)
    GroupRepo(engine).sync(
        [WelfareGroup(id="g1", name="群", city="深圳", location=Location(lat=22.5, lon=113.9))]
    )
    repo, stays = TicketRepo(engine), MembershipRepo(engine)
    ticket, _ = repo.open(_values("msg:a"))
    assert not repo.member_left(ticket)  # never seen joining (seeded): taken to be there
    stays.join("g1", Person("u1", "张三"), T0)
    assert not repo.member_left(ticket)
    stays.leave("g1", "u1", T0 + timedelta(minutes=5))
    assert repo.member_left(ticket)
    stays.join("g1", Person("u1", "张三"), T0 + timedelta(minutes=9))  # back again
    assert not repo.member_left(ticket)


def test_ops_contacts_list_the_tickets_that_reached_nobody(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    repo = TicketRepo(make_engine(url))
    nobody, _ = repo.open(_values("msg:nobody"))
    managed, _ = repo.open({**_values("msg:cm"), "manager_contact": "cm"})
    assert [t.number for t in repo.unresolved_for("ops")] == []
    assert [t.number for t in repo.unresolved_for("ops", unassigned=True)] == [nobody.number]
    assert [t.number for t in repo.unresolved_for("cm")] == [managed.number]
