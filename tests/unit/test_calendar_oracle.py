"""The work calendar against an independent oracle: the ``chinese-calendar`` package.

``chinese-calendar`` is kept by other people from the State Council notices, with its own data;
the calendar under test reads the ``holidays`` package. Every day of 2025 and 2026 is compared.

The oracle, from ``chinese_calendar.get_holiday_detail(d) -> (is_day_off, name)``:

- ``(True, name)``: a day off of the break of festival ``name``, weekend days inside the break
  included (the notice for 2026 lists 春节 as 2月15日至23日, Sunday the 15th included);
- ``(True, None)``: an ordinary weekend, which belongs to no break;
- ``(False, name)``: a make-up workday (调休上班) paid for the break ``name``: a workday, no break;
- ``(False, None)``: an ordinary workday.

``is_holiday`` alone would not do: it is True on ordinary weekends too.

A *break* is a run of named days off, joined across ordinary weekend days between two of them
(in 2025 and 2026 the package names those weekend days already, so this only guards against a
gap in its data). Its names are the festival names of its days: where two festivals share one
break, as 国庆节 and 中秋节 did from 1 to 8 October 2025 ("国庆节、中秋节：10月1日至8日放假调休"),
each name covers the whole break, as the notice lists it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import chinese_calendar
import pytest

from bot.opsdata.models import Campaign
from scheduler.calendar import WorkCalendar
from scheduler.clock import SHANGHAI
from scheduler.triggers import occurrences

YEARS = (2025, 2026)
ZH_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
}
CALENDAR = WorkCalendar()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _oracle_breaks(year: int) -> dict[date, frozenset[str]]:
    """Each day of ``year``'s official breaks, mapped to the zh names of its break."""
    breaks: list[tuple[list[date], set[str]]] = []
    pending_weekend: list[date] = []
    for d in _days(date(year, 1, 1), date(year, 12, 31)):
        day_off, name = chinese_calendar.get_holiday_detail(d)
        if day_off and name is not None:
            if breaks and breaks[-1][0][-1] + timedelta(days=1 + len(pending_weekend)) == d:
                breaks[-1][0].extend([*pending_weekend, d])
                breaks[-1][1].add(ZH_NAMES[name])
            else:
                breaks.append(([d], {ZH_NAMES[name]}))
            pending_weekend = []
        elif day_off:
            pending_weekend.append(d)
        else:
            pending_weekend = []
    return {d: frozenset(names) for days, names in breaks for d in days}


@pytest.mark.parametrize("year", YEARS)
def test_workdays_match_chinese_calendar_on_every_day(year: int) -> None:
    mismatches = [
        d
        for d in _days(date(year, 1, 1), date(year, 12, 31))
        if CALENDAR.is_workday(d) != chinese_calendar.is_workday(d)
    ]

    assert mismatches == []


@pytest.mark.parametrize("year", YEARS)
def test_holidays_all_covers_every_day_of_every_break_and_nothing_else(year: int) -> None:
    oracle = _oracle_breaks(year)
    mismatches = [
        (d, d in oracle)
        for d in _days(date(year, 1, 1), date(year, 12, 31))
        if CALENDAR.matches_holiday(d, "all") != (d in oracle)
    ]

    assert mismatches == []


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("name", sorted(ZH_NAMES.values()))
def test_each_named_holiday_covers_its_whole_break(year: int, name: str) -> None:
    oracle = _oracle_breaks(year)
    expected = [d for d in _days(date(year, 1, 1), date(year, 12, 31)) if name in oracle.get(d, ())]
    actual = [
        d
        for d in _days(date(year, 1, 1), date(year, 12, 31))
        if CALENDAR.matches_holiday(d, [name])
    ]

    assert expected, f"the oracle knows no {name} in {year}"
    assert actual == expected


def test_the_oracle_reads_the_2026_spring_festival_break_as_the_notice_lists_it() -> None:
    # 国务院办公厅通知 2026：春节 2月15日（周日）至23日（周一）放假调休，共9天；2月14日、28日上班。
    spring = [d for d, names in _oracle_breaks(2026).items() if "春节" in names]

    assert spring == _days(date(2026, 2, 15), date(2026, 2, 23))


def test_a_spring_festival_campaign_fires_on_every_day_of_the_2026_break() -> None:
    campaign = Campaign.model_validate(
        {
            "id": "spring-perks",
            "name": "春节福利",
            "kind": "holiday",
            "schedule": {"at": "10:00", "holidays": ["春节"]},
            "template": "holiday.j2",
        }
    )
    start = datetime(2026, 2, 1, tzinfo=SHANGHAI)
    end = datetime(2026, 3, 1, tzinfo=SHANGHAI)

    fired = list(occurrences(campaign, CALENDAR, start, end))

    assert fired == [
        datetime.combine(d, time(10), tzinfo=SHANGHAI)
        for d in _days(date(2026, 2, 15), date(2026, 2, 23))
    ]
