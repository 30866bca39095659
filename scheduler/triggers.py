"""Campaign schedules as APScheduler triggers: the one place schedule semantics live.

A campaign fires at *times of day* on *accepted days*, in Asia/Shanghai.

Times of day come from ``schedule.at`` (one or more ``HH:MM``), or from ``schedule.cron`` when
given, which then replaces ``at``. ``cron`` is a 5-field crontab string read with standard crontab
meaning: weekday numbers 0 and 7 are Sunday (APScheduler 3 alone would read 0 as Monday), and
when both day-of-month and day-of-week are restricted, a day matching either fires.

A day is accepted when every one of these holds:

- it lies inside ``valid`` (inclusive dates); ``enabled: false`` accepts no day at all;
- its weekday is listed in ``days``, when ``days`` is given;
- it is a :class:`~scheduler.calendar.WorkCalendar` workday, when ``workdays_only`` is true
  (make-up weekend workdays included, statutory holidays excluded);
- it passes the kind's own day rule:

  - ``daily``, ``meal``, ``lottery``, ``weekly``: none (``weekly`` relies on ``days``);
  - ``monthly``: its day of month is in ``day_of_month``; a listed day a month lacks (31 in a
    30-day month, 29-31 in February) means that month's last day (bill days), and a date
    fires once even when several listed days land on it;
  - ``holiday``: it lies in the official break of a holiday ``holidays`` names (or of any
    holiday, ``all``), from the break's first day off to its last, weekend days inside it
    included (see :meth:`~scheduler.calendar.WorkCalendar.matches_holiday`);
  - ``once``: it is one of ``dates``.

  With ``cron`` the kind's rule still applies when its key is given, so nothing ops staff wrote
  is silently ignored.

``welcome`` campaigns have no schedule. Apart from ``once`` campaigns, whose dates are known, a
trigger gives up (``None``) after five years without an accepted day, so a filter that can never
pass does not spin forever.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.opsdata.models import WEEKDAYS, Campaign, Schedule
from scheduler.calendar import WorkCalendar
from scheduler.clock import SHANGHAI, aware

__all__ = [
    "CampaignTrigger",
    "campaign_trigger",
    "crontab_weekdays",
    "occurrences",
    "validate_cron",
]

MAX_IDLE_DAYS = 5 * 366
"""Days without an accepted day after which a trigger is considered finished."""

_TICK = timedelta(microseconds=1)
_CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_DAY_NUMBERS = {name: i for i, name in enumerate(_CRON_DAY_NAMES[:7])}
_CRON_DAY_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")
_CRON_DAY_HINT = "use 0-7 (0 and 7 are Sunday) or mon-sun"

DayRule = Callable[[date], bool]


class CampaignTrigger(BaseTrigger):
    """Fires at the times of ``times`` on the days ``accepts`` allows, up to ``last_day``.

    ``times`` is any APScheduler trigger that yields times of day (a :class:`CronTrigger` or an
    :class:`OrTrigger` of them); day filtering happens here, skipping ahead a day at a time.
    """

    def __init__(
        self,
        name: str,
        times: BaseTrigger,
        accepts: DayRule,
        first_day: date | None = None,
        last_day: date | None = None,
        next_candidate: Callable[[date], date | None] | None = None,
    ) -> None:
        self.name = name
        self.times = times
        self.accepts = accepts
        self.first_day = first_day
        self.last_day = last_day
        self._next_candidate = next_candidate

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time after ``previous_fire_time`` (or at/after ``now`` when None)."""
        if previous_fire_time is None:
            return self.next_fire_at_or_after(now)
        start = min(aware(now), aware(previous_fire_time) + _TICK)
        if start == previous_fire_time:
            start += _TICK
        return self.next_fire_at_or_after(start)

    def next_fire_at_or_after(self, when: datetime) -> datetime | None:
        """The earliest fire time ``t`` with ``t >= when``, or None when there is none."""
        start = aware(when)
        if self.first_day and start.date() < self.first_day:
            start = _midnight(self.first_day)
        give_up = start.date() + timedelta(days=MAX_IDLE_DAYS)
        if self.last_day and (self.last_day < give_up or self._next_candidate is not None):
            give_up = self.last_day
        day = start.date()
        while day <= give_up:
            accepted = self._next_accepted_day(day, give_up)
            if accepted is None:
                return None
            fire = self.times.get_next_fire_time(None, max(start, _midnight(accepted)))
            if fire is None:
                return None
            if fire.date() == accepted:
                return fire
            day = fire.date()  # no time left that day: carry on from the times' next day
        return None

    def _next_accepted_day(self, day: date, give_up: date) -> date | None:
        while day <= give_up:
            if self._next_candidate is not None:
                candidate = self._next_candidate(day)
                if candidate is None:
                    return None
                day = candidate
                if day > give_up:
                    return None
            if self.accepts(day):
                return day
            day += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"campaign[{self.name}: {self.times}]"

    def __repr__(self) -> str:
        return f"<CampaignTrigger {self.name!r} times={self.times!r}>"


def campaign_trigger(campaign: Campaign, calendar: WorkCalendar) -> CampaignTrigger | None:
    """The trigger for ``campaign``, or None when it never fires on a schedule.

    None for a ``welcome`` campaign (sent when members join) and for a disabled one.
    """
    if campaign.kind == "welcome" or not campaign.enabled:
        return None
    s = campaign.schedule
    times = _cron_trigger(s.cron) if s.cron else _times_of_day(s.at)
    rules = _day_rules(campaign, calendar)
    dates = sorted(set(s.dates)) if campaign.kind == "once" and s.dates else None
    last_day = campaign.valid.to
    if dates is not None:
        last_day = min(last_day, dates[-1]) if last_day else dates[-1]
    return CampaignTrigger(
        name=campaign.id,
        times=times,
        accepts=lambda d: all(rule(d) for rule in rules),
        first_day=campaign.valid.from_,
        last_day=last_day,
        next_candidate=_next_listed(dates) if dates is not None else None,
    )


def occurrences(
    campaign: Campaign, calendar: WorkCalendar, start: datetime, end: datetime
) -> Iterator[datetime]:
    """Every fire time ``t`` of ``campaign`` with ``start <= t < end`` (half-open), ascending.

    Naive ``start``/``end`` are read as Asia/Shanghai; fire times are aware, in Asia/Shanghai,
    without duplicates. Consecutive windows ``[a, b)``, ``[b, c)`` never share an occurrence.
    """
    trigger = campaign_trigger(campaign, calendar)
    if trigger is None:
        return
    end = aware(end)
    fire = trigger.next_fire_at_or_after(start)
    while fire is not None and fire < end:
        yield fire
        fire = trigger.next_fire_at_or_after(fire + _TICK)


def validate_cron(expr: str) -> str | None:
    """An error message for a bad 5-field crontab ``expr``, or None when it is usable."""
    try:
        trigger = _cron_trigger(expr)
    except ValueError as exc:
        return f"invalid cron {expr!r}: {exc}"
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=SHANGHAI)) is None:
        return f"cron {expr!r} never fires (no such date)"
    return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _times_of_day(at: list[time]) -> BaseTrigger:
    by_minute: dict[tuple[int, int], list[int]] = {}
    for t in sorted(set(at)):
        by_minute.setdefault((t.minute, t.second), []).append(t.hour)
    triggers = [
        CronTrigger(hour=",".join(map(str, hours)), minute=minute, second=second, timezone=SHANGHAI)
        for (minute, second), hours in by_minute.items()
    ]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def _cron_trigger(expr: str) -> BaseTrigger:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, dom, month, dow = fields
    weekdays = _crontab_weekdays(dow)
    if dom != "*" and dow != "*":
        # Crontab fires when either day field matches; APScheduler would require both.
        return OrTrigger(
            [
                CronTrigger.from_crontab(f"{minute} {hour} {dom} {month} *", timezone=SHANGHAI),
                CronTrigger.from_crontab(
                    f"{minute} {hour} * {month} {weekdays}", timezone=SHANGHAI
                ),
            ]
        )
    return CronTrigger.from_crontab(f"{minute} {hour} {dom} {month} {weekdays}", timezone=SHANGHAI)


def crontab_weekdays(field: str) -> frozenset[str]:
    """The weekdays (``mon`` … ``sun``) a crontab weekday field selects, read as the scheduler
    reads it (0 and 7 are Sunday, ranges, steps, names); ``ValueError`` when it is unreadable."""
    if field == "*":
        return frozenset(_CRON_DAY_NAMES)
    return frozenset(_crontab_weekdays(field).split(","))


def _crontab_weekdays(field: str) -> str:
    """Rewrite a crontab weekday field (0 or 7 = Sunday) as APScheduler weekday names."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        m = _CRON_DAY_ITEM.match(item)
        if not m:
            raise ValueError(f"unreadable weekday {item!r}; {_CRON_DAY_HINT}")
        first, last, step = m.groups()
        if step is not None and int(step) == 0:
            raise ValueError(f"weekday step in {item!r} must be at least 1")
        lo, hi = (0, 6) if first == "*" else (_cron_day(first), _cron_day(last or first))
        if first != "*" and last is None and step:
            hi = 7
        if hi < lo:
            raise ValueError(f"weekday range {item!r} runs backwards")
        days.update(n % 7 for n in range(lo, hi + 1, int(step or 1)))
    if not days:
        raise ValueError(f"weekday field {field!r} selects no day")
    return ",".join(_CRON_DAY_NAMES[n] for n in sorted(days))


def _cron_day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _CRON_DAY_NUMBERS:
        return _CRON_DAY_NUMBERS[token]
    raise ValueError(f"unknown weekday {token!r}; {_CRON_DAY_HINT}")


def _day_rules(campaign: Campaign, calendar: WorkCalendar) -> list[DayRule]:
    s = campaign.schedule
    rules: list[DayRule] = [campaign.valid.contains]
    if s.days:
        weekdays = {WEEKDAYS.index(d) for d in s.days}
        rules.append(lambda d: d.weekday() in weekdays)
    if s.workdays_only:
        rules.append(calendar.is_workday)
    kind_rule = _kind_rule(campaign.kind, s, calendar)
    if kind_rule is not None:
        rules.append(kind_rule)
    return rules


def _kind_rule(kind: str, s: Schedule, calendar: WorkCalendar) -> DayRule | None:
    if kind == "monthly" and s.day_of_month:
        return _bill_days(s.day_of_month)
    if kind == "holiday" and s.holidays:
        names = s.holidays
        return lambda d: calendar.matches_holiday(d, names)
    if kind == "once" and s.dates:
        dates = frozenset(s.dates)
        return dates.__contains__
    return None


def _bill_days(days_of_month: list[int]) -> DayRule:
    wanted = frozenset(days_of_month)
    latest = max(wanted)

    def accepts(d: date) -> bool:
        if d.day in wanted:
            return True
        is_last = (d + timedelta(days=1)).month != d.month
        return is_last and latest > d.day

    return accepts


def _next_listed(dates: list[date]) -> Callable[[date], date | None]:
    def next_listed(day: date) -> date | None:
        i = bisect.bisect_left(dates, day)
        return dates[i] if i < len(dates) else None

    return next_listed
