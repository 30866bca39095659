"""The perk calendar members read in every welcome."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.campaigns import CampaignPlanner
from bot.config import QuietHours
from bot.opsdata import load_opsdata
from bot.opsdata.models import Campaign
from bot.perks import describe_days
from tests.support import copy_ops


def campaign(kind: str, **schedule) -> Campaign:  # noqa: ANN003
    return Campaign(
        id="c", name="福利", kind=kind, template="t.j2", schedule={"at": "10:00", **schedule}
    )


def test_days_are_described_as_people_say_them() -> None:
    assert describe_days(campaign("daily")) == "每天"
    assert describe_days(campaign("daily", workdays_only=True)) == "工作日"
    assert (
        describe_days(campaign("weekly", days=["mon", "tue", "wed", "thu", "fri"])) == "周一至周五"
    )
    assert describe_days(campaign("weekly", days=["wed"])) == "周三"
    assert describe_days(campaign("weekly", days=["sat", "sun"])) == "周末"
    assert describe_days(campaign("monthly", day_of_month=[20, 5])) == "每月5日、20日"
    assert describe_days(campaign("holiday", holidays=["春节"])) == "春节"
    assert describe_days(campaign("holiday", holidays="all")) == "法定节假日"
    assert describe_days(campaign("once", dates=[date(2026, 12, 12)])) == "12月12日"


def test_a_cron_campaign_is_described_by_its_cron_days_and_times() -> None:
    from bot.perks import send_times

    c = campaign("daily", cron="0 15 * * 1-5")  # `at: 10:00` beside it is ignored
    assert describe_days(c) == "周一至周五"
    assert [t.strftime("%H:%M") for t in send_times(c) or []] == ["15:00"]
    assert describe_days(campaign("daily", cron="30 9 1 * *")) == "不定期"


def test_the_welcome_lists_the_cron_time_and_leaves_out_a_perk_that_never_fires(
    tmp_path: Path,
) -> None:
    base = copy_ops(tmp_path)
    (base / "campaigns" / "extra.yaml").write_text(
        "campaigns:\n"
        "  - {id: cron-and-at, name: 下午茶, kind: daily, template: daily.j2,\n"
        "     schedule: {at: '10:30', cron: '0 15 * * *'}, data: {perk: x, app_entry: y}}\n"
        "  - {id: late, name: 夜宵, kind: daily, template: daily.j2,\n"
        "     schedule: {at: '23:00'}, data: {perk: x, app_entry: y}}\n",
        encoding="utf-8",
    )
    ops = load_opsdata(base / "campaigns", base / "templates")
    planner = CampaignPlanner(ops, QuietHours())
    lines = [p["text"] for p in planner.perks(ops.groups["sz-futian-cbd"], date(2026, 12, 1))]
    assert "每天 15:00 下午茶" in lines
    assert not any("夜宵" in line for line in lines), lines
    assert not any("不定期" in line for line in lines), lines


@pytest.mark.parametrize(
    "dow", ["0-7", "1-5", "0,6", "mon-fri", "*/2", "5-7", "sun", "7", "1-3,5", "*"]
)
def test_a_cron_s_weekdays_in_the_calendar_are_the_days_it_fires(dow: str) -> None:
    # The perk calendar read "0-7" as Sunday only, where the scheduler fires every day.
    from datetime import datetime, timedelta

    from bot.perks import _cron_weekdays
    from scheduler.clock import SHANGHAI
    from scheduler.triggers import _cron_trigger

    trigger = _cron_trigger(f"0 9 * * {dow}")
    at, fired = datetime(2026, 11, 30, tzinfo=SHANGHAI), set()
    for _ in range(14):
        at = trigger.get_next_fire_time(None, at + timedelta(seconds=1))
        fired.add(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[at.weekday()])
    assert set(_cron_weekdays(f"0 9 * * {dow}") or ()) == fired
