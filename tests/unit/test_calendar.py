"""The work calendar: statutory Chinese holidays, make-up workdays and ops corrections."""

from datetime import date, timedelta

from bot.opsdata.models import CalendarOverrides, ExtraHoliday
from scheduler.calendar import WorkCalendar


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_spring_festival_2026_make_up_saturdays_are_workdays() -> None:
    calendar = WorkCalendar()

    assert calendar.is_workday(date(2026, 2, 14))  # Saturday, worked for the holiday
    assert calendar.is_workday(date(2026, 2, 28))  # Saturday, worked for the holiday
    assert not calendar.is_workday(date(2026, 2, 15))  # an ordinary Sunday
    assert not any(calendar.is_workday(d) for d in _days(date(2026, 2, 16), date(2026, 2, 23)))
    assert calendar.is_workday(date(2026, 2, 24))


def test_holiday_names_are_chinese_and_weekends_are_not_holidays() -> None:
    calendar = WorkCalendar()

    assert calendar.holiday_names(date(2026, 2, 17)) == ["春节"]
    assert calendar.holiday_names(date(2026, 10, 5)) == ["国庆节（补假）"]
    assert calendar.holiday_names(date(2026, 3, 10)) == []
    assert calendar.is_holiday(date(2026, 10, 1))
    assert calendar.is_holiday(date(2026, 2, 20))  # a bridging day off
    assert not calendar.is_holiday(date(2026, 3, 8))  # an ordinary Sunday
    assert not calendar.is_holiday(date(2026, 3, 10))


def test_a_name_matches_its_substitute_days_but_bridging_days_only_match_all() -> None:
    calendar = WorkCalendar()
    bridging = date(2026, 10, 7)  # 休息日（由 2026-10-10 调休）

    assert calendar.matches_holiday(date(2026, 10, 5), ["国庆节"])  # 国庆节（补假）
    assert not calendar.matches_holiday(date(2026, 10, 5), ["春节"])
    assert not calendar.matches_holiday(bridging, ["国庆节"])
    assert calendar.matches_holiday(bridging, "all")
    assert calendar.matches_holiday(bridging, ["休息日"])
    assert not calendar.matches_holiday(date(2026, 3, 8), "all")
    assert not calendar.matches_holiday(date(2026, 10, 1), [""])


def test_an_extra_holiday_from_ops_turns_a_workday_off() -> None:
    wednesday = date(2026, 3, 11)
    bank_day = ExtraHoliday(date=wednesday, name="行庆日")
    calendar = WorkCalendar(CalendarOverrides(holidays=[bank_day]))

    assert not calendar.is_workday(wednesday)
    assert calendar.is_holiday(wednesday)
    assert calendar.holiday_names(wednesday) == ["行庆日"]
    assert calendar.matches_holiday(wednesday, ["行庆日"])
    assert WorkCalendar().is_workday(wednesday)


def test_an_extra_workday_from_ops_turns_a_sunday_into_a_workday() -> None:
    sunday = date(2027, 2, 14)
    calendar = WorkCalendar(CalendarOverrides(workdays=[sunday]))

    assert calendar.is_workday(sunday)
    assert not calendar.is_workday(sunday + timedelta(days=7))


def test_not_holidays_removes_a_statutory_holiday() -> None:
    national_day = date(2026, 10, 1)  # a Thursday
    calendar = WorkCalendar(CalendarOverrides(not_holidays=[national_day]))

    assert calendar.holiday_names(national_day) == []
    assert calendar.is_workday(national_day)
    assert not calendar.matches_holiday(national_day, "all")
