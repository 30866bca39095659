"""A group's perk calendar: which campaign reaches it on which days at what time.

Shown in every welcome, so newcomers know what to expect and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from bot.config import QuietHours
from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WEEKDAY_ZH, WEEKDAYS, Campaign, WelfareGroup
from scheduler.triggers import crontab_weekdays

# Every-day perks first, then weekly, monthly, holiday and one-off ones; by time within each.
_KIND_ORDER = {
    "daily": 0,
    "meal": 0,
    "weekly": 1,
    "lottery": 1,
    "monthly": 2,
    "holiday": 3,
    "once": 4,
}


@dataclass(frozen=True)
class Perk:
    """One line of a perk calendar, e.g. ``周三 10:00 观影特惠``."""

    weekday: str
    time: str
    name: str
    kind: str
    campaign: str

    @property
    def text(self) -> str:
        """The line as members read it."""
        return f"{self.weekday} {self.time} {self.name}".strip()

    def as_context(self) -> dict[str, str]:
        """Template context form (plain dict, with ``text``)."""
        # Spelt out rather than dataclasses.asdict (a deep copy): one per group per fan-out.
        return {
            "weekday": self.weekday,
            "time": self.time,
            "name": self.name,
            "kind": self.kind,
            "campaign": self.campaign,
            "text": self.text,
        }


def cron_times(cron: str) -> list[time] | None:
    """The times of day a crontab fires at (``"0 15 * * *"`` -> 15:00), when its minute and hour
    fields are plain numbers or lists of them; None for steps, ranges and ``*`` (many times)."""
    fields = cron.split()
    if len(fields) != 5:
        return None
    try:
        minutes = [int(x) for x in fields[0].split(",")]
        hours = [int(x) for x in fields[1].split(",")]
    except ValueError:
        return None
    if not all(0 <= m < 60 for m in minutes) or not all(0 <= h < 24 for h in hours):
        return None
    return sorted({time(h, m) for h in hours for m in minutes})


def _cron_weekdays(cron: str) -> list[str] | None:
    """The weekdays a crontab fires on when only its day-of-week field is restricted (read by
    the scheduler's own rule: ``1-5``, ``0,6``, ``mon-fri``, ``0-7``, steps); None when it
    depends on the date or cannot be read."""
    fields = cron.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        return None
    try:
        days = crontab_weekdays(fields[4])
    except ValueError:
        return None
    return [d for d in WEEKDAYS if d in days]


def describe_days(campaign: Campaign) -> str:
    """When a campaign fires, in the words members use (每天, 工作日, 周三, 每月5日、20日 …)."""
    s = campaign.schedule
    if campaign.kind == "monthly":
        dates = "、".join(f"{d}日" for d in sorted(set(s.day_of_month)))
        return f"每月{dates}" if dates else "每月"
    if campaign.kind == "holiday":
        if s.holidays == "all" or len(s.holidays) > 3:
            return "法定节假日"
        return "、".join(s.holidays)
    if campaign.kind == "once":
        return "、".join(f"{d.month}月{d.day}日" for d in s.dates)
    days: list[str] = [d for d in WEEKDAYS if d in s.days] if s.days else list(WEEKDAYS)
    if s.cron:
        on = _cron_weekdays(s.cron)
        if on is None:
            return "不定期"
        days = [d for d in days if d in on]
    if s.workdays_only and days in (list(WEEKDAYS), list(WEEKDAYS[:5])):
        return "工作日"
    if days == list(WEEKDAYS):
        return "每天"
    if days == list(WEEKDAYS[:5]):
        return "周一至周五"
    if days == list(WEEKDAYS[5:]):
        return "周末"
    return "、".join(WEEKDAY_ZH[d] for d in days)


def send_times(campaign: Campaign, quiet: QuietHours | None = None) -> list[time] | None:
    """The times of day ``campaign`` sends at: its cron's when ``cron`` is given (it replaces
    ``at``), else ``at``; without those a marketing campaign cannot send in ``quiet`` hours.
    None when a cron's times cannot be listed."""
    s = campaign.schedule
    times = cron_times(s.cron) if s.cron else sorted(s.at)
    if times is None or quiet is None or not campaign.marketing:
        return times
    return [t for t in times if not quiet.contains(t)]


def perk_calendar(
    ops: OpsData, group: WelfareGroup, today: date, quiet: QuietHours | None = None
) -> list[Perk]:
    """The perks a group gets from the campaigns that reach it and are valid today or later.

    A marketing campaign whose every time falls in the ``quiet`` hours never sends, so it is
    not advertised; times are the cron's when ``cron`` is given.
    """
    perks: list[Perk] = []
    timed = {c.id: send_times(c, quiet) for c in ops.campaigns.values()}

    def order(c: Campaign) -> tuple[int, str, str]:
        times = timed[c.id]
        first = times[0].strftime("%H:%M") if times else "99:99"
        return _KIND_ORDER.get(c.kind, 9), first, c.id

    for c in sorted(ops.campaigns.values(), key=order):
        if c.kind == "welcome" or not c.enabled or not ops.targets(c, group):
            continue
        if c.valid.to is not None and c.valid.to < today:
            continue
        times = timed[c.id]
        if times == []:
            continue  # every time inside the quiet hours: it never sends
        shown = "、".join(t.strftime("%H:%M") for t in times or ())
        perks.append(Perk(describe_days(c), shown, c.name, c.kind, c.id))
    return perks
