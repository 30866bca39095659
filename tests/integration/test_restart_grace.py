"""A push missed while the bot was down is sent late within the grace period, else recorded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from db.models import ScheduleOccurrence
from scheduler.clock import SHANGHAI
from tests.support import ROOT, bot_settings, make_rig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def lunch_sends(records: list[dict]) -> list[dict]:
    return [r for r in records if "午餐福利" in r.get("text", "")]


async def test_missed_lunch_is_sent_late_within_grace(tmp_path: Path) -> None:
    settings = bot_settings(
        ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"}, outbox={"grace": "1h"}
    )
    first = make_rig(settings, at("2026-12-01T11:00"))
    await first.advance_to(at("2026-12-01T11:10"))
    first.bot.close()  # down from 11:10 to 11:45; lunch was due at 11:30

    second = make_rig(settings, at("2026-12-01T11:45"))
    await second.advance_to(at("2026-12-01T12:30"))
    sent = lunch_sends(second.records())
    assert len(sent) >= 12
    assert min(r["at"] for r in sent) >= "2026-12-01T11:45"


async def test_missed_lunch_beyond_grace_is_recorded_not_sent(tmp_path: Path) -> None:
    settings = bot_settings(
        ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"}, outbox={"grace": "1h"}
    )
    first = make_rig(settings, at("2026-12-01T11:00"))
    await first.advance_to(at("2026-12-01T11:10"))
    first.bot.close()

    second = make_rig(settings, at("2026-12-01T14:00"))
    await second.advance_to(at("2026-12-01T14:05"))
    assert lunch_sends(second.records()) == []
    with Session(second.bot.engine) as s:
        rows = s.exec(
            select(ScheduleOccurrence).where(ScheduleOccurrence.campaign_id == "lunch-deals")
        ).all()
    assert [(r.status, r.fire_at.astimezone(SHANGHAI).strftime("%H:%M")) for r in rows] == [
        ("missed", "11:30")
    ]


async def test_a_restart_does_not_send_the_same_push_again(tmp_path: Path) -> None:
    settings = bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"})
    first = make_rig(settings, at("2026-12-01T11:25"))
    await first.advance_to(at("2026-12-01T11:40"))  # halfway through the 20-minute spread
    before = {r["to"] for r in lunch_sends(first.records())}
    first.bot.close()

    second = make_rig(settings, at("2026-12-01T11:41"))
    await second.advance_to(at("2026-12-01T12:30"))
    after = [r["to"] for r in lunch_sends(second.records())]
    assert before and after
    assert not before & set(after)
    assert len(after) == len(set(after))
    assert len(before) + len(after) >= 12
