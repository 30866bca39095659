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


def test_a_name_matches_its_whole_break_substitute_and_bridging_days_included() -> None:
    calendar = WorkCalendar()
    bridging = date(2026, 10, 7)  # 休息日（由 2026-10-10 调休）, the break's last day

    assert calendar.matches_holiday(date(2026, 10, 5), ["国庆节"])  # 国庆节（补假）
    assert not calendar.matches_holiday(date(2026, 10, 5), ["春节"])
    assert calendar.matches_holiday(bridging, ["国庆节"])
    assert calendar.matches_holiday(bridging, "all")
    assert calendar.matches_holiday(bridging, ["休息日"])
    assert not calendar.matches_holiday(date(2026, 10, 8), ["国庆节"])
    assert not calendar.matches_holiday(date(2026, 3, 8), "all")
    assert not calendar.matches_holiday(date(2026, 10, 1), [""])


def test_holidays_all_covers_the_weekend_days_inside_the_2026_breaks() -> None:
    # The days the old day-by-day rule missed: weekend days the notices list as days off.
    missed = [
        date(2026, 1, 3),
        date(2026, 2, 15),
        date(2026, 2, 21),
        date(2026, 2, 22),
        date(2026, 4, 4),
        date(2026, 5, 3),
        date(2026, 6, 20),
        date(2026, 6, 21),
        date(2026, 9, 26),
        date(2026, 9, 27),
        date(2026, 10, 4),
    ]
    calendar = WorkCalendar()

    assert [d for d in missed if not calendar.matches_holiday(d, "all")] == []


def test_the_spring_festival_break_runs_from_its_first_day_off_to_its_last() -> None:
    calendar = WorkCalendar()

    spring = calendar.holiday_break(date(2026, 2, 21))  # the Saturday in the middle

    assert spring is not None
    assert (spring.first, spring.last) == (date(2026, 2, 15), date(2026, 2, 23))
    assert "春节" in spring.names and "农历除夕" in spring.names
    assert all(calendar.matches_holiday(d, ["春节"]) for d in _days(spring.first, spring.last))
    assert not calendar.matches_holiday(date(2026, 2, 14), ["春节"])  # make-up workday
    assert not calendar.matches_holiday(date(2026, 2, 24), ["春节"])
    assert calendar.holiday_break(date(2026, 3, 8)) is None  # an ordinary Sunday
    assert calendar.holiday_break(date(2026, 3, 10)) is None  # an ordinary Tuesday


def test_a_break_shared_by_two_festivals_matches_both_names_on_every_day() -> None:
    # 2025 notice: 国庆节、中秋节：10月1日（周三）至8日（周三）放假调休，共8天。
    calendar = WorkCalendar()
    days = _days(date(2025, 10, 1), date(2025, 10, 8))

    assert all(calendar.matches_holiday(d, ["中秋节"]) for d in days)
    assert all(calendar.matches_holiday(d, ["国庆节"]) for d in days)
    assert not calendar.matches_holiday(date(2025, 9, 30), ["中秋节"])


def test_a_break_crossing_the_new_year_belongs_to_new_years_day() -> None:
    # 2018 notice: 元旦：2017年12月30日至2018年1月1日放假调休，共3天。
    calendar = WorkCalendar()

    assert [
        d
        for d in _days(date(2017, 12, 28), date(2018, 1, 3))
        if calendar.matches_holiday(d, ["元旦"])
    ] == _days(date(2017, 12, 30), date(2018, 1, 1))


def test_ops_holidays_for_an_unknown_year_form_a_break_with_the_weekend_inside() -> None:
    # Ops file a Monday-to-Friday break and a make-up Saturday after it (as for a year the
    # package does not know): the weekend before joins the break, the make-up Saturday does not.
    monday = date(2031, 3, 3)
    days_off = [ExtraHoliday(date=monday + timedelta(days=i), name="行庆日") for i in range(5)]
    calendar = WorkCalendar(
        CalendarOverrides(holidays=days_off, workdays=[monday + timedelta(days=5)])
    )

    assert [
        d
        for d in _days(monday - timedelta(days=3), monday + timedelta(days=8))
        if calendar.matches_holiday(d, ["行庆日"])
    ] == _days(monday - timedelta(days=2), monday + timedelta(days=4))


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
