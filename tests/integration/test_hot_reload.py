"""Editing ops data while the bot runs: good edits take effect, broken ones are reported and
the last good configuration stays live."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


async def test_a_template_edit_takes_effect_without_a_restart(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rig = make_rig(bot_settings(base), at("2026-12-01T11:00"))
    meal = base / "templates" / "meal.j2"
    meal.write_text("今日{{ data.meal }}：{{ merchants[0].name }}", encoding="utf-8")
    assert rig.bot.reload() == []
    await rig.advance_to(at("2026-12-01T12:00"))
    lunch = [r for r in rig.records() if r["text"].startswith("今日午餐：")]
    assert len(lunch) >= 12


async def test_a_broken_edit_keeps_the_last_good_configuration(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rig = make_rig(bot_settings(base), at("2026-12-01T11:00"))
    meals = base / "campaigns" / "meals.yaml"
    meals.write_text(
        meals.read_text(encoding="utf-8").replace('at: "11:30"', 'at: "25:61"'), encoding="utf-8"
    )
    problems = rig.bot.reload()
    assert problems and "meals.yaml:" in problems[0] and "25:61" in problems[0]
    (base / "templates" / "meal.j2").write_text("{{ merchnts }}", encoding="utf-8")
    assert rig.bot.reload()  # still broken: nothing applied
    await rig.advance_to(at("2026-12-01T12:00"))
    lunch = [r for r in rig.records() if "午餐福利" in r["text"]]
    assert len(lunch) >= 12  # the old campaign and template, untouched


async def test_a_new_campaign_file_is_discovered(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rig = make_rig(bot_settings(base), at("2026-12-01T14:00"))
    (base / "campaigns" / "flash.yaml").write_text(
        "id: flash-sale\nname: 限时秒杀\nkind: once\ntargets: {groups: [sz-nanshan-kjy]}\n"
        'schedule: {dates: [2026-12-01], at: "15:00"}\ntemplate: app-activity.j2\n'
        "data: {pitch: 一元秒杀, app_entry: 首页, period: 今天}\n",
        encoding="utf-8",
    )
    assert rig.bot.reload() == []
    await rig.advance_to(at("2026-12-01T15:10"))
    flash = [r for r in rig.records() if "限时秒杀" in r["text"]]
    assert [r["to"] for r in flash] == ["room:sz-nanshan-kjy"]
