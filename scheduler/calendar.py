"""The mainland-China work calendar: statutory holidays, make-up workdays and ops corrections.

Statutory data comes from the ``holidays`` package (China, zh_CN names). It knows the State
Council's yearly arrangement: days off such as 春节 and 国庆节, bridging days named
``休息日（由 2026-02-14 调休）`` and the weekend days worked in exchange (make-up workdays,
调休上班).
Ops staff correct or extend it in ``calendar:`` files (:class:`CalendarOverrides`), for instance
for a year the package does not know yet. Overrides always win over the package.

The package names only the weekdays of a break: in 2026 the Spring Festival break runs from
Sunday 15 February to Monday 23 February, yet the package names neither that Sunday nor the
weekend of the 21st, which are plain weekend days to it. A :class:`HolidayBreak` restores the
break as the State Council notice lists it: a maximal run of consecutive days off holding at least
one named day off, so the weekend days inside it (and a weekend joined to it, 与周末连休) belong to
it, while a make-up workday ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import holidays

from bot.opsdata.models import CalendarOverrides

_DAY = timedelta(days=1)

BRIDGING_DAY = "休息日"
"""The name prefix of a bridging day off, given in exchange for a make-up workday."""


@dataclass(frozen=True, slots=True)
class HolidayBreak:
    """An official break: consecutive days off, ``first`` to ``last``, holding named holidays.

    ``names`` are the holiday names of its days in date order, without repeats; a break shared by
    two festivals (国庆节 and 中秋节 in 2025) carries both.
    """

    first: date
    last: date
    names: tuple[str, ...]

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.first <= d <= self.last


@dataclass(frozen=True, slots=True)
class _StatutoryYear:
    names: dict[date, tuple[str, ...]]
    makeup_workdays: frozenset[date]


class WorkCalendar:
    """Answers "is this a workday?" and "which holiday is this?" for dates in Asia/Shanghai.

    Precedence, highest first: ``overrides.workdays`` (a workday), ``overrides.holidays`` (a day
    off with that name), the statutory make-up workdays, the statutory holidays unless listed in
    ``overrides.not_holidays``, then Monday to Friday.
    """

    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        overrides = overrides or CalendarOverrides()
        self._statutory = holidays.country_holidays("CN", language="zh_CN")
        self._years: dict[int, _StatutoryYear] = {}
        self._extra: dict[date, list[str]] = {}
        for extra in overrides.holidays:
            self._extra.setdefault(extra.date, []).append(extra.name)
        self._workdays = frozenset(overrides.workdays)
        self._not_holidays = frozenset(overrides.not_holidays)
        # Days off already placed: their break, or None for an ordinary weekend. Workdays are
        # not stored, so the cache holds at most the days off of the years asked about.
        self._breaks: dict[date, HolidayBreak | None] = {}

    def is_workday(self, d: date) -> bool:
        """True on statutory workdays (make-up weekend workdays included) and ops workdays."""
        if d in self._workdays:
            return True
        if d in self._extra:
            return False
        year = self._year(d.year)
        if d in year.makeup_workdays:
            return True
        if d in year.names and d not in self._not_holidays:
            return False
        return d.weekday() < 5

    def holiday_names(self, d: date) -> list[str]:
        """The zh_CN holiday names of ``d``: statutory ones, then ops extras.

        Statutory names are dropped when ops list ``d`` in ``not_holidays``. Empty on ordinary
        days, ordinary weekends included.
        """
        names = [] if d in self._not_holidays else list(self._year(d.year).names.get(d, ()))
        names += [n for n in self._extra.get(d, ()) if n not in names]
        return names

    def is_holiday(self, d: date) -> bool:
        """True on a named day off: a holiday or bridging day, not an ordinary weekend."""
        return not self.is_workday(d) and bool(self.holiday_names(d))

    def holiday_break(self, d: date) -> HolidayBreak | None:
        """The official break ``d`` lies in, or None on a workday or an ordinary weekend.

        A break is a maximal run of consecutive days off (not :meth:`is_workday`) in which at least
        one day has a holiday name: the weekend days inside it count, a make-up workday ends it.
        Ops overrides take part like statutory data, so an extra holiday on a Friday joins the
        weekend after it.
        """
        if d in self._breaks:
            return self._breaks[d]
        if self.is_workday(d):
            return None
        first = last = d
        while not self.is_workday(first - _DAY):
            first -= _DAY
        while not self.is_workday(last + _DAY):
            last += _DAY
        days = [first + _DAY * i for i in range((last - first).days + 1)]
        names = tuple(dict.fromkeys(n for day in days for n in self.holiday_names(day)))
        found = HolidayBreak(first, last, names) if names else None
        self._breaks.update(dict.fromkeys(days, found))
        return found

    def matches_holiday(self, d: date, names: list[str] | Literal["all"]) -> bool:
        """True when ``d`` lies in the break of a holiday ``names`` lists (``"all"``: any break).

        Every day of the official break counts, from its first day off to its last, weekend days
        inside it included (see :meth:`holiday_break`). A name matches every holiday name of the
        break that starts with it, so ``国庆节`` also matches ``国庆节（补假）``; a break shared by
        two festivals matches both names on each of its days.
        """
        found = self.holiday_break(d)
        if found is None:
            return False
        if names == "all":
            return True
        wanted = [n.strip() for n in names if n.strip()]
        return any(name.startswith(w) for name in found.names for w in wanted)

    def _year(self, year: int) -> _StatutoryYear:
        cached = self._years.get(year)
        if cached is None:
            cached = self._years[year] = self._load_year(year)
        return cached

    def _load_year(self, year: int) -> _StatutoryYear:
        # A make-up workday is recorded while loading the year of the holiday it pays for, which
        # may be the next one (late-December weekends worked for New Year's Day).
        for y in (year, year + 1):
            date(y, 1, 1) in self._statutory  # noqa: B015 - membership loads the year
        names = {d: tuple(self._statutory.get_list(d)) for d in self._statutory if d.year == year}
        makeup = frozenset(
            d for d in self._statutory.weekend_workdays if d.year == year and d.weekday() >= 5
        )
        return _StatutoryYear(names=names, makeup_workdays=makeup)
