"""The perk calendar members read in every welcome."""

from __future__ import annotations

from datetime import date

from bot.opsdata.models import Campaign
from bot.perks import describe_days


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
