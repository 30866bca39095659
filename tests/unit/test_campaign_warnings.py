"""`qunfu check` warnings for campaigns that pass validation yet send nothing (issue 7).

Each story adds one campaign file to a copy of the shipped data and expects one warning at the
campaign's own line and column, saying why in plain words.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.campaign_warnings import campaign_warnings
from bot.opsdata import load_opsdata
from bot.opsdata.problems import Problem
from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)  # a Tuesday; the sample campaigns are live


def warnings_for(
    tmp_path: Path, text: str | None = None, now: datetime = NOW, name: str = "extra.yaml"
) -> list[str]:
    """Warnings as `FILE:LINE:COL: message`, FILE relative to the campaigns folder."""
    base = copy_ops(tmp_path)
    if text is not None:
        (base / "campaigns" / name).write_text(text, encoding="utf-8")
    ops = load_opsdata(base / "campaigns", base / "templates")
    found = campaign_warnings(ops, bot_settings(base), now)
    assert all(p.is_warning for p in found)
    return [_short(p, base / "campaigns") for p in found]


def _short(p: Problem, base: Path) -> str:
    return f"{p.path.relative_to(base)}:{p.line}:{p.col}: {p.message}"


def test_the_shipped_sample_data_has_no_warning(tmp_path: Path) -> None:
    assert warnings_for(tmp_path) == []


def test_a_meal_no_merchant_is_filed_under(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: early-bird\nname: 早点\nkind: meal\nschedule: {at: '08:30'}\n"
        "template: meal.j2\ndata: {meal: 早点}\n",
    )
    assert w.startswith("extra.yaml:6:14: no merchant is filed under 早点")
    assert "(did you mean the category '早餐'?)" in w
    assert "categories that exist: 午餐, 早餐, 晚餐, 电影" in w
    assert "none of the 15 targeted group(s) gets anything" in w


def test_merchants_all_beyond_the_radius(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: near-lunch\nname: 午餐\nkind: meal\ntargets: {cities: [上海]}\n"
        "schedule: {at: '11:30'}\ntemplate: meal.j2\ndata: {meal: 午餐, radius_m: 100}\n",
    )
    assert w.startswith(
        "extra.yaml:7:28: 4 of 4 targeted group(s) have no 午餐 merchant within 100 m"
    ), w
    assert "sh-jingan-njxl, sh-pudong-ljz, sh-pudong-zj, …" in w
    assert "qunfu explain near-lunch --group ID" in w


def test_a_send_time_inside_quiet_hours(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: dawn\nname: 早\nkind: daily\nschedule:\n  at: ['07:30']\n"
        "template: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert w == (
        "extra.yaml:5:8: 07:30 is inside the quiet hours (21:30-08:00, config quiet_hours): "
        "marketing sends at that time are skipped"
    )


def test_a_valid_window_already_over(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: old\nname: 旧\nkind: daily\nvalid: {from: 2025-01-01, to: 2025-12-31}\n"
        "schedule: {at: '10:00'}\ntemplate: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert w == (
        "extra.yaml:4:31: the valid window ended on 2025-12-31 (335 day(s) ago): "
        "the campaign sends nothing any more"
    )


def test_targets_that_match_no_group_with_did_you_mean(tmp_path: Path) -> None:
    found = warnings_for(
        tmp_path,
        "id: sh\nname: 上海\nkind: daily\n"
        "targets: {cities: [上海市], districts: [南山], tags: [ofice, 南山区]}\n"
        "schedule: {at: '10:00'}\ntemplate: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert found == [
        "extra.yaml:4:20: city '上海市' matches no group (did you mean the city '上海'?)",
        "extra.yaml:4:38: district '南山' matches no group (did you mean the district '南山区'?)",
        "extra.yaml:4:50: tag 'ofice' matches no group (did you mean the tag 'office'?)",
        "extra.yaml:4:57: tag '南山区' matches no group: '南山区' is a district; "
        "list it under `targets.districts`",
    ]


def test_targets_that_match_nothing_together(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: mix\nname: 混\nkind: daily\ntargets: {cities: [深圳], districts: [天河区]}\n"
        "schedule: {at: '10:00'}\ntemplate: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert w.startswith("extra.yaml:4:1: no group matches all of these targets together")


def test_a_second_breakfast_at_the_same_time_for_the_same_groups(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: breakfast-2\nname: 早餐2\nkind: meal\ntargets: {tags: [office]}\n"
        "schedule: {at: '08:00', workdays_only: true}\ntemplate: meal.j2\n"
        "data: {meal: 早餐}\n",
        name="more-meals.yaml",
    )
    # Reported at the one written later (more-meals.yaml comes after meals.yaml), naming the
    # other; the office groups that have a breakfast merchant get both.
    assert w.startswith(
        "more-meals.yaml:5:16: reaches 9 group(s) that 'breakfast-deals' (meal) also reaches "
        "within 30 minutes (2026-12-01 08:00 and 08:00; e.g. gz-haizhu-pz, gz-tianhe-zjxc,"
    ), w
    assert w.endswith("members get two meal messages at once")


def test_a_campaign_whose_days_never_meet(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: weekend-work\nname: 周末\nkind: daily\n"
        "schedule: {at: '12:00', days: [sat, sun], workdays_only: true}\n"
        "template: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert w == (
        "extra.yaml:4:25: sends nothing in the next 14 days (2026-12-01 to 2026-12-14): "
        "not one of its days (sat, sun) on 10 day(s); not a workday (workdays_only: true) "
        "on 4 day(s)"
    )


def test_a_campaign_valid_later_is_judged_on_its_valid_window(tmp_path: Path) -> None:
    text = (
        "id: spring\nname: 春\nkind: daily\nvalid: {from: 2027-03-01, to: 2027-03-31}\n"
        "schedule: {at: '10:00', days: [wed], workdays_only: true}\n"
        "template: daily.j2\ndata: {perk: x, app_entry: y}\n"
    )
    assert warnings_for(tmp_path, text) == []  # Wednesdays in March 2027 are workdays
    (w,) = warnings_for(tmp_path / "b", text.replace("wed", "sun"))
    assert w.startswith(
        "extra.yaml:5:25: sends nothing in its valid window (2027-03-01 to 2027-03-31)"
    )


def test_a_holiday_campaign_is_not_reported_between_holidays(tmp_path: Path) -> None:
    # The sample 节日福利 has no holiday in the next 14 days: its kind is judged over a year.
    assert warnings_for(tmp_path, now=datetime(2026, 7, 1, tzinfo=SHANGHAI)) == []


def test_a_disabled_campaign_is_quiet_but_its_target_typo_is_not(tmp_path: Path) -> None:
    found = warnings_for(
        tmp_path,
        "id: off\nname: 关\nkind: daily\nenabled: false\ntargets: {cities: [深证]}\n"
        "schedule: {at: '07:00'}\ntemplate: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert found == [
        "extra.yaml:5:20: city '深证' matches no group (did you mean the city '深圳'?)"
    ]


def test_at_beside_cron_is_ignored_and_said_so(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: tea\nname: 下午茶\nkind: daily\nschedule: {at: '10:30', cron: '0 15 * * *'}\n"
        "template: daily.j2\ndata: {perk: x, app_entry: y}\n",
    )
    assert w.startswith("extra.yaml:4:16: `at` is ignored when `cron` is given"), w
    assert "fires at 15:00, never at 10:30" in w


def test_an_unknown_holiday_name_is_named_at_its_item(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path,
        "id: cny\nname: 春节\nkind: holiday\nschedule: {at: '13:00', holidays: [国庆节, 春节节]}\n"
        "template: holiday.j2\ndata: {greeting: 你好, perk: x}\n",
    )
    assert w.startswith("extra.yaml:4:41: no holiday is called '春节节'"), w
    assert "(did you mean the holiday '春节'?)" in w
    assert "春节, 清明节" in w


def test_a_second_welcome_for_the_same_groups_says_which_one_is_sent(tmp_path: Path) -> None:
    (w,) = warnings_for(
        tmp_path, "id: a-welcome\nname: 第二个欢迎\nkind: welcome\ntemplate: welcome.j2\n"
    )
    assert w.startswith("welcome.yaml:"), w
    assert "welcome 'a-welcome' also reaches 15 of its group(s)" in w
    assert "newcomers there get 'a-welcome' (the first by id) and never this one" in w


def test_welcomes_for_different_groups_do_not_clash(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    path = base / "campaigns" / "welcome.yaml"
    path.write_text(
        path.read_text(encoding="utf-8") + "targets: {cities: [深圳]}\n", encoding="utf-8"
    )
    (base / "campaigns" / "sh.yaml").write_text(
        "id: a-welcome\nname: 上海欢迎\nkind: welcome\ntemplate: welcome.j2\n"
        "targets: {cities: [上海]}\n",
        encoding="utf-8",
    )
    ops = load_opsdata(base / "campaigns", base / "templates")
    assert campaign_warnings(ops, bot_settings(base), NOW) == []


def test_an_unknown_group_id_alone_is_not_also_a_criteria_warning(tmp_path: Path) -> None:
    from bot.opsdata.loader import read_opsdata

    base = copy_ops(tmp_path)
    (base / "campaigns" / "extra.yaml").write_text(
        "id: one-group\nname: 单群\nkind: daily\ntargets: {groups: [sz-no-such-group]}\n"
        "schedule: {at: '13:00'}\ntemplate: daily.j2\ndata: {perk: x, app_entry: y}\n",
        encoding="utf-8",
    )
    loaded = read_opsdata(base / "campaigns", base / "templates")
    assert any("sz-no-such-group" in p.message for p in loaded.errors), loaded.problems
    found = campaign_warnings(loaded.ops, bot_settings(base), NOW)
    assert not [p for p in found if "cities, districts and tags" in p.message], found
