"""Campaign schedules: when each kind of campaign fires, in Asia/Shanghai."""

import time as timer
from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.opsdata.models import CalendarOverrides, Campaign, ExtraHoliday
from scheduler.calendar import WorkCalendar
from scheduler.clock import SHANGHAI
from scheduler.triggers import campaign_trigger, occurrences, validate_cron

CALENDAR = WorkCalendar()


def _campaign(kind: str, **fields: Any) -> Campaign:
    return Campaign.model_validate(
        {"id": f"test-{kind}", "name": "测试", "kind": kind, "template": "t.j2", **fields}
    )


def _at(day: date, hhmm: str = "09:00") -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=SHANGHAI)


def _fire_days(
    campaign: Campaign, first: date, last: date, calendar: WorkCalendar = CALENDAR
) -> list[date]:
    """Dates the campaign fires on between ``first`` and ``last``, both included."""
    start = _at(first, "00:00")
    end = _at(last + timedelta(days=1), "00:00")
    return [t.date() for t in occurrences(campaign, calendar, start, end)]


def test_workdays_only_daily_campaign_works_the_spring_festival_make_up_saturdays() -> None:
    campaign = _campaign("daily", schedule={"at": "09:00", "workdays_only": True})

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 2, 9)), _at(date(2026, 3, 2))))

    assert _at(date(2026, 2, 14)) in fired
    assert _at(date(2026, 2, 28)) in fired
    assert not [t for t in fired if date(2026, 2, 15) <= t.date() <= date(2026, 2, 23)]
    assert [t.date() for t in fired][:5] == [
        date(2026, 2, 9),
        date(2026, 2, 10),
        date(2026, 2, 11),
        date(2026, 2, 12),
        date(2026, 2, 13),
    ]
    assert all(t.time() == time(9) and t.utcoffset() == timedelta(hours=8) for t in fired)


def test_weekly_campaign_fires_every_wednesday() -> None:
    campaign = _campaign("weekly", schedule={"at": "19:30", "days": ["wed"]})

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 3, 1)), _at(date(2026, 4, 1))))

    assert fired == [_at(date(2026, 3, d), "19:30") for d in (4, 11, 18, 25)]


def test_bill_day_31_falls_back_to_the_last_day_of_shorter_months() -> None:
    campaign = _campaign("monthly", schedule={"at": "10:00", "day_of_month": [31]})

    fired = _fire_days(campaign, date(2026, 11, 1), date(2027, 3, 31))

    assert fired == [
        date(2026, 11, 30),
        date(2026, 12, 31),
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
    ]


def test_two_bill_days_landing_on_the_end_of_february_fire_once() -> None:
    campaign = _campaign("monthly", schedule={"at": "10:00", "day_of_month": [30, 31]})

    fired = _fire_days(campaign, date(2027, 2, 1), date(2027, 3, 31))

    assert fired == [date(2027, 2, 28), date(2027, 3, 30), date(2027, 3, 31)]


def test_valid_window_includes_both_end_dates() -> None:
    campaign = _campaign(
        "daily",
        valid={"from": "2026-12-01", "to": "2026-12-03"},
        schedule={"at": ["00:00", "23:59"]},
    )

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 11, 1)), _at(date(2027, 1, 1))))

    assert fired[0] == _at(date(2026, 12, 1), "00:00")
    assert fired[-1] == _at(date(2026, 12, 3), "23:59")
    assert len(fired) == 6


def test_disabled_campaign_never_fires() -> None:
    campaign = _campaign("daily", enabled=False, schedule={"at": "09:00"})

    assert campaign_trigger(campaign, CALENDAR) is None
    assert _fire_days(campaign, date(2026, 1, 1), date(2026, 12, 31)) == []


def test_welcome_campaign_has_no_schedule() -> None:
    assert campaign_trigger(_campaign("welcome"), CALENDAR) is None


def test_spring_festival_campaign_fires_on_every_day_of_the_break_only() -> None:
    # The 2026 break runs from Sunday 15 to Monday 23 February; 14 and 28 are make-up workdays.
    campaign = _campaign("holiday", schedule={"at": "08:00", "holidays": ["春节"]})

    fired = _fire_days(campaign, date(2026, 1, 1), date(2026, 12, 31))

    assert fired == [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]


def test_all_holidays_campaign_covers_breaks_weekends_inside_included_but_not_plain_weekends() -> (
    None
):
    campaign = _campaign("holiday", schedule={"at": "08:00", "holidays": "all"})

    fired = _fire_days(campaign, date(2026, 2, 1), date(2026, 3, 8))

    assert fired == [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]


def test_once_campaign_fires_on_each_listed_date() -> None:
    campaign = _campaign(
        "once", schedule={"at": ["10:00", "20:00"], "dates": ["2026-12-12", "2026-11-11"]}
    )

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 1, 1)), _at(date(2030, 1, 1))))

    assert fired == [
        _at(date(2026, 11, 11), "10:00"),
        _at(date(2026, 11, 11), "20:00"),
        _at(date(2026, 12, 12), "10:00"),
        _at(date(2026, 12, 12), "20:00"),
    ]


def test_once_campaign_far_in_the_future_is_still_found() -> None:
    campaign = _campaign("once", schedule={"at": "10:00", "dates": ["2036-01-01"]})

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 1, 1)), _at(date(2037, 1, 1))))

    assert fired == [_at(date(2036, 1, 1), "10:00")]


def test_cron_campaign_still_honours_workdays_only() -> None:
    # Crontab weekdays: 1-5 is Monday to Friday, whatever APScheduler 3 thinks.
    campaign = _campaign("daily", schedule={"cron": "30 11 * * 1-5", "workdays_only": True})

    fired = list(occurrences(campaign, CALENDAR, _at(date(2026, 9, 28)), _at(date(2026, 10, 12))))

    assert [t.date() for t in fired] == [
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
    ]
    assert all(t.time() == time(11, 30) for t in fired)


def test_cron_sunday_is_zero_or_seven() -> None:
    for expr in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun"):
        campaign = _campaign("weekly", schedule={"cron": expr})
        assert _fire_days(campaign, date(2026, 3, 1), date(2026, 3, 14)) == [
            date(2026, 3, 1),
            date(2026, 3, 8),
        ]


def test_validate_cron_explains_what_is_wrong() -> None:
    assert validate_cron("30 11 * * 1-5") is None
    assert "5 fields" in (validate_cron("30 11 * *") or "")
    assert validate_cron("61 11 * * *") is not None
    assert validate_cron("0 9 * * 8") is not None
    assert "never fires" in (validate_cron("0 9 30 2 *") or "")


def test_ops_extra_holiday_silences_a_workday_campaign() -> None:
    wednesday = date(2026, 3, 11)
    bank_day = ExtraHoliday(date=wednesday, name="行庆日")
    calendar = WorkCalendar(CalendarOverrides(holidays=[bank_day]))
    campaign = _campaign("daily", schedule={"at": "09:00", "workdays_only": True})

    fired = _fire_days(campaign, date(2026, 3, 9), date(2026, 3, 13), calendar)

    assert fired == [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 12), date(2026, 3, 13)]


def test_ops_extra_workday_wakes_a_workday_campaign_on_sunday() -> None:
    sunday = date(2027, 2, 21)
    calendar = WorkCalendar(CalendarOverrides(workdays=[sunday]))
    campaign = _campaign("daily", schedule={"at": "09:00", "workdays_only": True})

    fired = _fire_days(campaign, date(2027, 2, 19), date(2027, 2, 22), calendar)

    assert fired == [date(2027, 2, 19), sunday, date(2027, 2, 22)]


def test_trigger_speaks_apscheduler() -> None:
    campaign = _campaign("weekly", schedule={"at": "09:00", "days": ["wed"]})
    trigger = campaign_trigger(campaign, CALENDAR)
    assert trigger is not None

    first = trigger.get_next_fire_time(None, _at(date(2026, 3, 4), "09:00"))
    assert first == _at(date(2026, 3, 4))

    assert trigger.get_next_fire_time(first, first) == _at(date(2026, 3, 11))


def test_a_year_of_a_daily_campaign_takes_milliseconds() -> None:
    campaign = _campaign("daily", schedule={"at": "09:00", "workdays_only": True})
    CALENDAR.is_workday(date(2026, 1, 1))  # load the year outside the timing

    began = timer.perf_counter()
    fired = _fire_days(campaign, date(2026, 1, 1), date(2026, 12, 31))
    elapsed = timer.perf_counter() - began

    assert 240 < len(fired) < 260
    assert elapsed < 0.5


_CAMPAIGNS = st.sampled_from(
    [
        _campaign("daily", schedule={"at": ["09:00", "18:30"], "workdays_only": True}),
        _campaign("weekly", schedule={"at": "12:00", "days": ["sat", "sun"]}),
        _campaign("monthly", schedule={"at": "10:00", "day_of_month": [1, 29, 31]}),
        _campaign("holiday", schedule={"at": "08:00", "holidays": "all"}),
        _campaign("meal", schedule={"cron": "*/30 11-13 * * mon-fri"}),
        _campaign("lottery", schedule={"at": "20:00", "days": ["fri"]}),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    campaign=_CAMPAIGNS,
    start=st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2027, 6, 1)),
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120)),
    valid_from=st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 1)),
    valid_days=st.integers(min_value=0, max_value=200),
)
def test_occurrences_are_ordered_and_inside_every_bound(
    campaign: Campaign, start: datetime, span: timedelta, valid_from: date, valid_days: int
) -> None:
    valid_to = valid_from + timedelta(days=valid_days)
    bounded = campaign.model_copy(
        update={"valid": campaign.valid.model_validate({"from": valid_from, "to": valid_to})}
    )
    start = start.replace(tzinfo=SHANGHAI)
    end = start + span

    fired = list(occurrences(bounded, CALENDAR, start, end))

    assert all(a < b for a, b in zip(fired, fired[1:], strict=False))
    assert all(start <= t < end for t in fired)
    assert all(valid_from <= t.date() <= valid_to for t in fired)
    assert all(t.utcoffset() == timedelta(hours=8) for t in fired)
