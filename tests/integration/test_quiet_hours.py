"""Quiet hours hold back marketing; welcomes and replies still go out."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from db.models import ScheduleOccurrence
from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def late_campaign(base: Path, when: str) -> None:
    (base / "campaigns" / "late.yaml").write_text(
        f"id: late-night\nname: 夜宵福利\nkind: daily\ntargets: {{groups: [sz-nanshan-kjy]}}\n"
        f'schedule: {{at: "{when}"}}\ntemplate: daily.j2\n'
        "data: {perk: 夜宵满50减20, app_entry: 夜宵}\n",
        encoding="utf-8",
    )


async def test_a_push_inside_quiet_hours_is_not_sent_and_is_recorded(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    late_campaign(base, "22:30")
    rig = make_rig(bot_settings(base), at("2026-12-01T22:00"))
    await rig.advance_to(at("2026-12-01T23:00"))
    assert not [r for r in rig.records() if "夜宵" in r["text"]]
    with Session(rig.bot.engine) as s:
        row = s.exec(
            select(ScheduleOccurrence).where(ScheduleOccurrence.campaign_id == "late-night")
        ).one()
    assert (row.status, row.reason) == ("skipped", "quiet_hours")


async def test_preview_leaves_out_what_quiet_hours_hold_back(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    late_campaign(base, "22:30")
    rig = make_rig(bot_settings(base), at("2026-12-01T00:00"))
    planner = rig.bot.planner()
    shown = [d.campaign.id for d in planner.plan(at("2026-12-01T00:00"), at("2026-12-02T00:00"))]
    assert "late-night" not in shown and "lunch-deals" in shown


async def test_a_welcome_at_night_is_still_sent(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rig = make_rig(bot_settings(base), at("2026-12-01T23:30"))
    rig.gateway.add_contact("u1", "夜猫子")
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.advance_to(at("2026-12-01T23:31"))
    assert [r["mentions"] for r in rig.records()] == [["u1"]]


async def test_quiet_hours_can_be_turned_off(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    late_campaign(base, "22:30")
    rig = make_rig(bot_settings(base, quiet_hours={"enabled": False}), at("2026-12-01T22:00"))
    await rig.advance_to(at("2026-12-01T23:00"))
    assert [r["to"] for r in rig.records() if "夜宵" in r["text"]] == ["room:sz-nanshan-kjy"]
