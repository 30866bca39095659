"""Bot accounts: config errors, balanced sticky assignment, per-account pacing and daily caps,
the capacity warning and the expiry summary (issue 9)."""

from __future__ import annotations

import bisect
import shutil
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.accounts import AccountBook, AccountMap, assign_accounts, plan_accounts
from bot.config import AccountSettings, OutboxSettings, QuietHours
from bot.configfile import check_all
from bot.events import Say, contact_conv, room_conv
from bot.gateways.simulator import SimulatorGateway
from bot.opsdata.models import Location, WelfareGroup
from bot.outbox import Outbox, OutboxItem
from scheduler.clock import SHANGHAI, VirtualClock

T0 = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
REPO = Path(__file__).resolve().parents[2]


def group(gid: str, account: str | None = None) -> WelfareGroup:
    return WelfareGroup(
        id=gid, name=gid, city="深圳", location=Location(lat=22.5, lon=113.9), account=account
    )


# --- config errors -------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    return tmp_path


def _errors(config: Path) -> list[str]:
    return [str(p) for p in check_all(config, T0) if not p.is_warning]


def test_config_errors_are_located(deployment: Path) -> None:
    config = deployment / "config.yaml"
    config.write_text(
        "accounts:\n"
        "  - {id: bot-a, rate_per_minute: 20, daily_cap: 2000}\n"
        "  - {id: bot-a, rate_per_minute: 20}\n"
        "  - {id: bot-c, rate_per_minute: 0}\n"
        "  - {id: bot-d, daily_cap: -5}\n",
        encoding="utf-8",
    )
    errors = _errors(config)
    assert any("config.yaml:4:34:" in e and "more than 0" in e for e in errors)
    assert any("config.yaml:5:28:" in e and "at least 0" in e for e in errors)
    # Fix the values; the duplicate id is still reported at the second entry, naming the first.
    config.write_text(
        "accounts:\n  - {id: bot-a, rate_per_minute: 20}\n  - {id: bot-a, rate_per_minute: 10}\n",
        encoding="utf-8",
    )
    (dup,) = _errors(config)
    assert "config.yaml:3:" in dup and "'bot-a' is already defined (line 2)" in dup


def test_a_group_naming_an_unknown_account_is_an_error_at_its_account_key(
    deployment: Path,
) -> None:
    config = deployment / "config.yaml"
    config.write_text("accounts:\n  - {id: bot-a}\n  - {id: bot-b}\n", encoding="utf-8")
    groups = deployment / "campaigns" / "groups.yaml"
    text = groups.read_text(encoding="utf-8")
    first = text.index("  - id: ")
    line_end = text.index("\n", first)
    groups.write_text(text[: line_end + 1] + "    account: bot-x\n" + text[line_end + 1 :])
    line = text[: line_end + 1].count("\n") + 1
    (error,) = _errors(config)
    assert error.startswith(f"campaigns/groups.yaml:{line}:") or f"groups.yaml:{line}:" in error
    assert "unknown account 'bot-x'" in error and "bot-a, bot-b" in error


# --- assignment ------------------------------------------------------------------------------

ids = st.lists(st.from_regex(r"g[0-9]{1,4}", fullmatch=True), unique=True, max_size=60)


@settings(max_examples=150, deadline=None)
@given(first=ids, more=ids, n_accounts=st.integers(1, 5))
def test_adding_groups_never_moves_existing_ones_and_new_ones_balance(
    first: list[str], more: list[str], n_accounts: int
) -> None:
    accounts = [f"bot-{i}" for i in range(n_accounts)]
    before = assign_accounts([group(g) for g in first], accounts, {})
    after = assign_accounts([group(g) for g in [*first, *more]], accounts, before)
    assert {g: after[g] for g in before} == before  # sticky
    counts = Counter(before.values())
    assert max(counts.values(), default=0) - min(
        (counts[a] for a in accounts), default=0
    ) <= 1  # balanced from scratch
    # Deterministic: the same inputs in another order give the same answer.
    again = assign_accounts([group(g) for g in reversed([*first, *more])], accounts, before)
    assert again == after


def test_the_directory_pin_wins_and_a_removed_account_s_groups_move() -> None:
    stored = {"g1": "bot-a", "g2": "bot-b", "g3": "bot-gone"}
    got = assign_accounts(
        [group("g1", account="bot-b"), group("g2"), group("g3")], ["bot-a", "bot-b"], stored
    )
    assert got == {"g1": "bot-b", "g2": "bot-b", "g3": "bot-a"}
    amap, changes = plan_accounts(
        [group("g1", account="bot-b"), group("g2"), group("g3")],
        [AccountSettings(id="bot-a"), AccountSettings(id="bot-b")],
        stored,
    )
    assert changes == {"g1": "bot-b", "g3": "bot-a"} and amap.group_counts() == {
        "bot-a": 1,
        "bot-b": 2,
    }


# --- pacing per account, daily caps, restarts --------------------------------------------------


ACCOUNTS = [
    AccountSettings(id="bot-a", rate_per_minute=20, daily_cap=100),
    AccountSettings(id="bot-b", rate_per_minute=10, daily_cap=30),
    AccountSettings(id="bot-c", rate_per_minute=6),
]


def _outbox(engine: Engine, clock: VirtualClock, book: AccountBook) -> Outbox:
    outbox = Outbox(
        engine,
        OutboxSettings(rate_per_minute=20, jitter=timedelta(seconds=3), seed=3),
        QuietHours(),
        clock,
        ACCOUNTS,
    )
    outbox.route, outbox.local = book.account_for, book.local_accounts
    return outbox


async def test_each_account_keeps_its_rate_in_every_minute_and_its_daily_cap_across_restarts(
    engine: Engine,
) -> None:
    clock = VirtualClock(T0)
    groups = {"bot-a": 150, "bot-b": 50, "bot-c": 20}
    of_group = {f"{a}-g{i}": a for a, n in groups.items() for i in range(n)}
    book = AccountBook(ACCOUNTS)
    book.swap(AccountMap(tuple(ACCOUNTS), of_group))
    gateway = SimulatorGateway(clock, "bot-a")
    for a in ACCOUNTS:
        gateway.add_account(a.id)
    for gid in of_group:
        gateway.add_room(gid)
    outbox = _outbox(engine, clock, book)
    # Asked for the default account: the outbox sends each through its group's account.
    outbox.enqueue(
        OutboxItem(key=gid, action=Say(room_conv(gid), "早上好"), not_before=T0, account="bot-a")
        for gid in of_group
    )
    for step in range(5000):
        if step % 50 == 0:  # a restart: a new outbox on the same database
            outbox = _outbox(engine, clock, book)
        await outbox.deliver_due(gateway)
        due = outbox.next_due()
        if due is None:
            break
        clock.set(max(due, clock.now()))
    sent = defaultdict(list)
    for s in gateway.transcript:
        assert isinstance(s.action, Say)
        assert of_group[s.action.to.removeprefix("room:")] == s.account  # the group's account
        sent[s.account].append(s.at)
    assert {a: len(t) for a, t in sent.items()} == groups  # everything went, in the end
    for account in ACCOUNTS:
        times = sent[account.id]
        per_window = [
            bisect.bisect_left(times, t + timedelta(seconds=60)) - i for i, t in enumerate(times)
        ]
        assert max(per_window) <= account.rate_per_minute  # type: ignore[operator]
        per_day = Counter(t.astimezone(SHANGHAI).date() for t in times)
        if account.daily_cap is not None:
            assert max(per_day.values()) <= account.daily_cap
            assert per_day[T0.date()] == account.daily_cap  # the cap, not less, on the first day


def test_a_private_reply_goes_through_the_account_the_person_wrote_to() -> None:
    book = AccountBook(ACCOUNTS)
    book.swap(AccountMap(tuple(ACCOUNTS), {"g1": "bot-b"}))
    assert book.account_for(Say(contact_conv("u1"), "hi"), "bot-a") == "bot-a"
    assert book.account_for(Say(contact_conv("u1"), "hi"), None) == "bot-a"  # default
    assert book.account_for(Say(room_conv("g1"), "hi"), "bot-a") == "bot-b"  # the group's


# --- capacity: planned, not discovered -------------------------------------------------------


def _push_deployment(root: Path, groups: int, accounts: str) -> Path:
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "templates" / "push.j2").write_text("{{ group.name }} 午餐优惠", encoding="utf-8")
    rows = "".join(
        f"  - {{id: g{i:05d}, name: 群{i}, city: 深圳, "
        f"location: {{lat: {22.5 + i * 1e-5:.5f}, lon: 113.9}}}}\n"
        for i in range(groups)
    )
    (root / "campaigns" / "groups.yaml").write_text("groups:\n" + rows, encoding="utf-8")
    (root / "campaigns" / "lunch.yaml").write_text(
        "id: lunch-push\nname: 午餐推送\nkind: daily\n"
        "schedule: {at: '11:30', spread: 20m}\ntemplate: push.j2\n",
        encoding="utf-8",
    )
    config = root / "config.yaml"
    config.write_text(f"accounts:\n{accounts}outbox: {{grace: 1h}}\n", encoding="utf-8")
    return config


def test_a_2500_group_push_on_one_account_warns_how_many_accounts_it_needs(
    tmp_path: Path,
) -> None:
    config = _push_deployment(tmp_path, 2500, "  - {id: bot-a, rate_per_minute: 20}\n")
    problems = check_all(config, T0)
    assert not [p for p in problems if not p.is_warning]
    (warning,) = [p for p in problems if p.is_warning and "expire" in p.message]
    assert warning.path.name == "lunch.yaml" and warning.line == 1
    assert "sends 2500 messages" in warning.message and "1 account " in warning.message
    assert "needs 2 accounts at 20/min" in warning.message
    assert "spread of at least" in warning.message  # or how much spread with the one it has


def test_enough_accounts_and_no_warning(tmp_path: Path) -> None:
    config = _push_deployment(
        tmp_path,
        2500,
        "  - {id: bot-a, rate_per_minute: 20}\n  - {id: bot-b, rate_per_minute: 20}\n",
    )
    assert not [p for p in check_all(config, T0) if "expire" in p.message]


# --- expired sends: counted, logged, shown, summarised once per occurrence ----------------------


OPS = ["ops1", "ops2"]


class _Planner:
    class ops:  # noqa: N801 - the shape ExpiryReport reads
        campaigns: dict[str, object] = {}


async def test_expired_sends_are_counted_and_ops_get_one_summary_per_occurrence(
    engine: Engine,
) -> None:
    from bot.expiry import ExpiryReport
    from db.repositories import CheckpointRepo

    clock = VirtualClock(T0)
    accounts = [AccountSettings(id="bot-a", rate_per_minute=6)]
    outbox = Outbox(
        engine,
        OutboxSettings(rate_per_minute=6, jitter=timedelta(0), grace=timedelta(minutes=5)),
        QuietHours(),
        clock,
        accounts,
    )
    gateway = SimulatorGateway(clock, "bot-a")
    for i in range(100):
        gateway.add_room(f"g{i}")
    for ops in ("ops1", "ops2"):
        gateway.add_contact(ops)
    fire = T0.isoformat()
    outbox.enqueue(
        OutboxItem(
            key=f"lunch:g{i}:{fire}",
            action=Say(room_conv(f"g{i}"), "午餐"),
            not_before=T0,
            campaign_id="lunch",
            group_id=f"g{i}",
            marketing=True,
            account="bot-a",
        )
        for i in range(100)
    )
    def report() -> ExpiryReport:
        planner: Any = _Planner()
        grace = timedelta(minutes=5)
        return ExpiryReport(outbox, CheckpointRepo(engine), lambda: planner, clock, grace, OPS)

    expiries = report()
    for _ in range(500):
        await expiries.run_due()
        await outbox.deliver_due(gateway)
        times = [t for t in (outbox.next_due(), expiries.next_due()) if t is not None]
        if not times:
            break
        clock.set(max(min(times), clock.now()))
    said = [s.action for s in gateway.transcript if isinstance(s.action, Say)]
    rooms = [a for a in said if a.to.startswith("room:")]
    expired = outbox.expired_rows()
    assert len(rooms) + len(expired) == 100 and len(expired) > 60  # 6/min for 5 min: ~31 sent
    assert outbox.expired == len(expired)  # counted
    summaries = [a for a in said if a.to.startswith("contact:")]
    assert sorted(a.to for a in summaries) == ["contact:ops1", "contact:ops2"]
    assert f"{len(expired)} 条" in summaries[0].text
    # Looking again (or after a restart) tells nobody twice.
    assert await report().run_due() == 0
