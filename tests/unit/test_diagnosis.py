"""Why a campaign sends, or not, to a group on a day (`bot.diagnosis`), on the shipped sample data.

The answers must agree with what the planner actually sends (the same planner as `qunfu preview`
and the live bot), and name the cause in plain words.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.campaigns import CampaignPlanner
from bot.config import QuietHours
from bot.diagnosis import CampaignDiagnosis, GroupVerdict, format_verdict, midnight
from bot.opsdata import load_opsdata
from bot.opsdata.bundle import OpsData
from bot.routing import merchants_near
from tests.support import ROOT, copy_ops

WED, SAT = date(2026, 12, 2), date(2026, 12, 5)


@pytest.fixture(scope="module")
def ops() -> OpsData:
    return load_opsdata(ROOT / "campaigns", ROOT / "templates")


@pytest.fixture(scope="module")
def diag(ops: OpsData) -> CampaignDiagnosis:
    return CampaignDiagnosis(CampaignPlanner(ops, QuietHours()))


def verdict(diag: CampaignDiagnosis, campaign: str, day: date, group: str) -> GroupVerdict:
    ops = diag.planner.ops
    return next(diag.explain(ops.campaigns[campaign], day, [ops.groups[group]]))


def codes(v: GroupVerdict) -> list[str]:
    return [r.code for r in v.reasons]


def test_a_targeted_group_sends_at_its_place_in_the_spread(diag: CampaignDiagnosis) -> None:
    v = verdict(diag, "daily-checkin", WED, "sh-xuhui-xjh")
    # The 8th of 15 groups in a 20-minute spread from 09:00, as the live bot and preview say.
    assert v.sends and [t.strftime("%H:%M") for t in v.sends_at] == ["09:09"]
    assert v.reasons == ()


def test_an_untargeted_group_is_told_so(diag: CampaignDiagnosis) -> None:
    v = verdict(diag, "breakfast-deals", WED, "sz-luohu-dm")  # tags [mall, residential]
    assert not v.sends and not v.targeted
    assert codes(v) == ["not_targeted"]
    assert v.reasons[0].message == (
        "not targeted: its tags [mall, residential] share none with targets.tags [office, campus]"
    )


def test_not_targeted_names_the_criterion_and_the_groups_own_value(tmp_path: Path) -> None:
    # Before: "not targeted (see the campaign's targets)" for every group, so `cities: [上海市]`
    # (the groups say 上海) left ops guessing why no group was reached.
    diag = edited(
        tmp_path,
        "extra.yaml",
        "campaigns:\n"
        "  - {id: sh, name: 沪, kind: daily, schedule: {at: '09:00'}, template: daily.j2,"
        " targets: {cities: [上海市], districts: [徐汇区]}, data: {perk: x, app_entry: y}}\n"
        "  - {id: listed, name: 列, kind: daily, schedule: {at: '09:00'}, template: daily.j2,"
        " targets: {groups: [sz-nanshan-kjy]}, data: {perk: x, app_entry: y}}\n",
    )
    (reason,) = verdict(diag, "sh", WED, "sh-xuhui-xjh").reasons
    assert reason.message == "not targeted: its city 上海 is not in targets.cities [上海市]"
    (both,) = verdict(diag, "sh", WED, "sz-nanshan-kjy").reasons
    assert "its city 深圳" in both.message and "its district 南山区" in both.message
    (listed,) = verdict(diag, "listed", WED, "sz-nanshan-szu").reasons
    assert listed.message == "not targeted: it is not in targets.groups [sz-nanshan-kjy]"


def test_a_weekend_day_is_not_a_workday_nor_a_listed_day(diag: CampaignDiagnosis) -> None:
    assert codes(verdict(diag, "breakfast-deals", SAT, "sz-nanshan-kjy")) == ["not_workday"]
    # lunch-deals is workdays_only too, in the shipped data; the weekly cinema lists its day.
    assert codes(verdict(diag, "cinema-wednesday", SAT, "sz-nanshan-kjy")) == ["not_listed_day"]


def test_kind_rules_name_the_bill_days_holidays_and_dates(diag: CampaignDiagnosis) -> None:
    bill = verdict(diag, "monthly-bill", date(2026, 12, 6), "sz-nanshan-kjy")
    assert codes(bill) == ["not_bill_day"] and "5, 20" in bill.reasons[0].message
    assert codes(verdict(diag, "holiday-greetings", WED, "sz-nanshan-kjy")) == ["not_holiday"]
    once = verdict(diag, "double12-app", WED, "sz-nanshan-kjy")
    assert codes(once) == ["not_listed_date"] and "2026-12-12" in once.reasons[0].message
    assert verdict(diag, "double12-app", date(2026, 12, 12), "sz-nanshan-kjy").sends


def test_outside_the_valid_window(diag: CampaignDiagnosis) -> None:
    v = verdict(diag, "breakfast-deals", date(2026, 10, 28), "sz-nanshan-kjy")
    assert codes(v) == ["outside_valid"]
    assert v.reasons[0].loc == ("valid", "from")
    assert "2026-11-01" in v.reasons[0].message


def test_a_welcome_campaign_is_sent_on_join(diag: CampaignDiagnosis) -> None:
    assert codes(verdict(diag, "welcome", WED, "sz-nanshan-kjy")) == ["on_join"]


def edited(tmp_path: Path, name: str, text: str) -> CampaignDiagnosis:
    base = copy_ops(tmp_path)
    (base / "campaigns" / name).write_text(text, encoding="utf-8")
    ops = load_opsdata(base / "campaigns", base / "templates")
    return CampaignDiagnosis(CampaignPlanner(ops, QuietHours()))


def test_quiet_hours_and_disabled(tmp_path: Path) -> None:
    diag = edited(
        tmp_path,
        "extra.yaml",
        "campaigns:\n"
        "  - {id: early, name: 早, kind: daily, schedule: {at: ['07:30', '09:00']},"
        " template: daily.j2, data: {perk: x, app_entry: y}}\n"
        "  - {id: off, name: 关, kind: daily, enabled: false, schedule: {at: '09:00'},"
        " template: daily.j2, data: {perk: x, app_entry: y}}\n",
    )
    v = verdict(diag, "early", WED, "sz-nanshan-kjy")
    # 09:00 still sends; 07:30 is held back by the quiet hours, and the reason says where.
    assert v.sends and [t.time() for t in v.sends_at] == [time(9, 0)]
    (quiet,) = v.reasons
    assert quiet.code == "quiet_hours" and quiet.loc == ("schedule", "at", 0)
    assert "07:30" in quiet.message and "21:30-08:00" in quiet.message
    assert "07:30" in format_verdict(v)
    assert codes(verdict(diag, "off", WED, "sz-nanshan-kjy")) == ["disabled"]


def test_no_merchant_within_the_radius_names_the_nearest(tmp_path: Path) -> None:
    diag = edited(
        tmp_path,
        "extra.yaml",
        "id: tiny-lunch\nname: 午餐\nkind: meal\nschedule: {at: '11:30'}\ntemplate: meal.j2\n"
        "data: {meal: 午餐, radius_m: 50}\n",
    )
    v = verdict(diag, "tiny-lunch", WED, "sz-nanshan-kjy")
    assert not v.sends and codes(v) == ["no_merchant_near"]
    group = diag.planner.ops.groups["sz-nanshan-kjy"]
    ((nearest, metres),) = merchants_near(
        group, diag.planner.ops.merchants.values(), radius_m=1e6, categories=["午餐"], limit=1
    )
    message = v.reasons[0].message
    assert message == (
        f"no merchant of category 午餐 within 50 m; the nearest is {nearest.name} at "
        f"{round(metres)} m"
    )
    assert v.reasons[0].loc == ("data", "radius_m")


def test_no_merchant_of_a_category_names_those_that_exist(tmp_path: Path) -> None:
    diag = edited(
        tmp_path,
        "extra.yaml",
        "id: early-bird\nname: 早点\nkind: meal\nschedule: {at: '08:30'}\ntemplate: meal.j2\n"
        "data: {meal: 早点}\n",
    )
    (reason,) = verdict(diag, "early-bird", WED, "sz-nanshan-kjy").reasons
    assert reason.code == "no_merchant_category" and reason.loc == ("data", "meal")
    assert "早点" in reason.message and "早餐" in reason.message


def test_merchants_near_but_not_open_that_day(tmp_path: Path) -> None:
    diag = edited(
        tmp_path,
        "extra.yaml",
        "id: sunday-cinema\nname: 周日观影\nkind: weekly\nschedule: {at: '10:00', days: [sun]}\n"
        "template: cinema.j2\ndata: {category: 电影, radius_m: 3000}\n",
    )
    # The cinemas near 珠江新城 give their offers on Wednesdays only.
    v = verdict(diag, "sunday-cinema", date(2026, 12, 6), "gz-tianhe-zjxc")
    assert codes(v) == ["no_merchant_that_day"] and "Sunday" in v.reasons[0].message


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=st.integers(min_value=0, max_value=400))
def test_explain_agrees_with_what_the_planner_sends(diag: CampaignDiagnosis, offset: int) -> None:
    day = date(2026, 11, 1) + timedelta(days=offset)
    planner = diag.planner
    sent: dict[tuple[str, str], list[datetime]] = {}
    for d in planner.plan(midnight(day), midnight(day + timedelta(days=1))):
        sent.setdefault((d.campaign.id, d.group.id), []).append(d.send_at)
    for campaign in planner.ops.campaigns.values():
        for v in diag.explain(campaign, day):
            assert list(v.sends_at) == sent.get((campaign.id, v.group.id), []), (campaign.id, v)
            assert v.sends or v.reasons
