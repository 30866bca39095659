"""Moderation strikes, removal and the audit log, end to end through `qunfu simulate` and
`qunfu audit`, plus the strike table on SQLite and PostgreSQL.

The scenario's expectations live beside it (tests/scenarios/moderation/strikes.expected.yaml):
the sends that must happen, in order, the removals, strings no send may contain (the ads and
the personal data), and how many sends contain a string.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from bot.cli import app
from bot.config import OutboxSettings, QuietHours
from bot.events import Remove, Say, contact_conv, room_conv
from bot.moderation import StrikeBook, StrikePolicy, Verdict
from bot.outbox import SEND_REASON, Outbox, OutboxItem
from db.moderation_repositories import StrikeRepo
from db.session import make_engine, upgrade
from scheduler.clock import VirtualClock
from tests.support import assert_transcript_meets

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "moderation" / "strikes.yaml"
EXPECTED = SCENARIO.with_name("strikes.expected.yaml")
runner = CliRunner()
AD = Verdict("ad", "ad.cashout", "禁止发布信用卡套现广告")
NOW = datetime.fromisoformat("2026-12-01T12:00:00+08:00")


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """The scenario played once (transcript), its database kept for `qunfu audit`."""
    db = tmp_path_factory.mktemp("moderation") / "sim.db"
    result = runner.invoke(app, ["simulate", str(SCENARIO), "--json", "--keep-db", str(db)])
    assert result.exit_code == 0, result.output
    return _json_lines(result.stdout), db


def test_three_ads_warn_twice_then_remove_and_tell_the_manager(
    run: tuple[list[dict[str, Any]], Path],
) -> None:
    records, _ = run
    expected = YAML(typ="safe").load(EXPECTED.read_text("utf-8"))
    assert_transcript_meets(records, expected)


def _audit(db: Path, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {{url: 'sqlite:///{db}'}}\nweb: {{enabled: false}}\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["audit", "--config", str(config), "--json", *args])
    assert result.exit_code == 0, result.output
    return _json_lines(result.stdout)


def test_audit_lists_every_action_with_its_reason(
    run: tuple[list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    records, db = run
    rows = _audit(db, tmp_path)
    assert len(rows) == len(records)  # every action of the transcript, nothing else
    assert set(rows[0]) == {
        "at",
        "action",
        "to",
        "account",
        "reason",
        "status",
        "text",
        "group",
        "key",
    }
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert all(r["status"] == "sent" and r["at"].endswith("+08:00") for r in rows)
    by_reason = {r["reason"]: r for r in rows}
    assert {
        "moderation:ad.cashout",
        "moderation:ad.repay",
        "moderation:personal_data.bank_card",
        "moderation:personal_data.phone",
        "ticket:1",
        "command:join",
    } <= set(by_reason)
    removal = next(r for r in rows if r["action"] == "remove")
    assert removal["reason"] == "moderation:ad.cashout" and removal["to"] == "contact:u1"
    assert by_reason["command:join"]["to"] == "contact:u2"
    # Previews are masked: a ticket's question never shows the phone number.
    assert not any("13812345678" in r["text"] or "6222 0212" in r["text"] for r in rows)


def test_audit_filters_by_group_and_by_shanghai_day(
    run: tuple[list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    _, db = run
    everything = _audit(db, tmp_path)
    in_group = _audit(db, tmp_path, "--group", "sz-nanshan-kjy")
    assert in_group and all(r["group"] == "sz-nanshan-kjy" for r in in_group)
    assert "command:join" not in {r["reason"] for r in in_group}  # a private reply, no group
    assert _audit(db, tmp_path, "--group", "no-such-group") == []
    first_day = _audit(db, tmp_path, "--to", "2026-12-01")
    second_day = _audit(db, tmp_path, "--from", "2026-12-02", "--to", "2026-12-02")
    assert [r["reason"] for r in first_day] == ["moderation:ad.cashout", "moderation:ad.repay"]
    assert first_day + second_day == everything
    assert _audit(db, tmp_path, "--from", "2026-12-03") == []


def test_audit_rejects_bad_dates_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "--from", "12/01/2026"])
    assert result.exit_code == 1 and "--from: expected a date as YYYY-MM-DD" in result.output
    result = runner.invoke(app, ["audit", "--from", "2026-12-02", "--to", "2026-12-01"])
    assert result.exit_code == 1 and "is after" in result.output


def test_audit_table_is_readable(run: tuple[list[dict[str, Any]], Path], tmp_path: Path) -> None:
    _, db = run
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", "--config", str(config), "--to", "2026-12-01"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].split()[:7] == ["at", "action", "to", "account", "reason", "status", "text"]
    assert lines[1].startswith("2026-12-01 10:01:00  say") and "moderation:ad.cashout" in lines[1]


# --- the strike table ------------------------------------------------------------------------


def test_strikes_count_per_member_and_group_within_the_window(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        repo = StrikeRepo(engine)
        book = StrikeBook(StrikePolicy(remove_after=3, window=timedelta(days=7)), repo)
        old = book.record("g1", "u1", AD, NOW - timedelta(days=8))
        assert old is not None and old.strikes == 1
        book.record("g2", "u1", AD, NOW)  # another group: its own count
        book.record("g1", "u2", AD, NOW)  # another member
        first = book.record("g1", "u1", AD, NOW - timedelta(hours=1))
        again = book.record("g1", "u1", AD, NOW - timedelta(hours=1))  # same message again
        assert first == again and first is not None and (first.strikes, first.remove) == (1, False)
        second = book.record("g1", "u1", AD, NOW)
        assert second is not None and (second.strikes, second.remaining) == (2, 1)
        third = book.record("g1", "u1", AD, NOW + timedelta(minutes=1))
        assert third is not None and third.remove
        assert (
            book.record("g1", "u1", Verdict("personal_data", "personal_data.phone", "x"), NOW)
            is None
        )
        repo.clear("g1", "u1")
        assert repo.count("g1", "u1", None) == 0 and repo.count("g2", "u1", None) == 1
    finally:
        engine.dispose()


# --- reasons set by every kind of enqueuer ------------------------------------------------------


def test_each_send_gets_its_reason_campaign_ticket_moderation_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        outbox = Outbox(engine, OutboxSettings(jitter=0), QuietHours(), VirtualClock(NOW))
        say = Say(room_conv("g1"), "午餐优惠")
        outbox.enqueue(
            [
                OutboxItem("c", say, NOW, campaign_id="lunch-deals", group_id="g1", marketing=True),
                OutboxItem("t", Say(contact_conv("cm"), "新工单"), NOW, campaign_id="ticket:4"),
                OutboxItem("m", Remove("g1", "u1"), NOW, reason="moderation:ad.pos"),
                OutboxItem("waitlist:7:x", Say(contact_conv("u3"), "有空位了"), NOW),
            ]
        )
        token = SEND_REASON.set("command:optout")  # as the dispatcher does around a handler
        try:
            outbox.enqueue([OutboxItem("msg:1", Say(contact_conv("u2"), "已退订"), NOW)])
        finally:
            SEND_REASON.reset(token)
        reasons = {
            k: (r.reason, r.group_id)
            for k in ("c", "t", "m", "waitlist:7:x", "msg:1")
            if (r := outbox.get(k)) is not None
        }
        assert reasons == {
            "c": ("campaign:lunch-deals", "g1"),
            "t": ("ticket:4", None),
            "m": ("moderation:ad.pos", "g1"),  # a removal's group is its room
            "waitlist:7:x": ("waitlist", None),
            "msg:1": ("command:optout", None),
        }
    finally:
        engine.dispose()


def test_a_removed_member_is_out_of_the_group_in_the_database(
    run: tuple[list[dict[str, Any]], Path],
) -> None:
    # The platform reports a removal as a leave; the simulator does the same, so the
    # membership closes and the member no longer counts towards the group's size.
    import sqlite3

    _, db = run
    expected = YAML(typ="safe").load(EXPECTED.read_text("utf-8"))
    with sqlite3.connect(db) as conn:
        for removed in expected["remove"]:
            open_rows = conn.execute(
                "SELECT count(*) FROM membership WHERE group_id = ? AND person_id = ? "
                "AND left_at IS NULL",
                (removed["room"], removed["contact"]),
            ).fetchone()[0]
            closed = conn.execute(
                "SELECT count(*) FROM membership WHERE group_id = ? AND person_id = ? "
                "AND left_at IS NOT NULL",
                (removed["room"], removed["contact"]),
            ).fetchone()[0]
            assert (open_rows, closed) == (0, 1)
