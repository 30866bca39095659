"""A group's perk calendar: which campaign reaches it on which days at what time.

Shown in every welcome, so newcomers know what to expect and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WEEKDAY_ZH, WEEKDAYS, Campaign, WelfareGroup

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
    """One line of a perk calendar, e.g. ``周三 10:00 电影票半价``."""

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
    if s.cron and not s.days:
        return "不定期"
    days: list[str] = [d for d in WEEKDAYS if d in s.days] if s.days else list(WEEKDAYS)
    if s.workdays_only and days in (list(WEEKDAYS), list(WEEKDAYS[:5])):
        return "工作日"
    if days == list(WEEKDAYS):
        return "每天"
    if days == list(WEEKDAYS[:5]):
        return "周一至周五"
    if days == list(WEEKDAYS[5:]):
        return "周末"
    return "、".join(WEEKDAY_ZH[d] for d in days)


def perk_calendar(ops: OpsData, group: WelfareGroup, today: date) -> list[Perk]:
    """The perks a group gets from the campaigns that reach it and are valid today or later."""
    perks: list[Perk] = []

    def order(c: Campaign) -> tuple[int, str, str]:
        first = min(c.schedule.at).strftime("%H:%M") if c.schedule.at else "99:99"
        return _KIND_ORDER.get(c.kind, 9), first, c.id

    for c in sorted(ops.campaigns.values(), key=order):
        if c.kind == "welcome" or not c.enabled or not ops.targets(c, group):
            continue
        if c.valid.to is not None and c.valid.to < today:
            continue
        times = "、".join(t.strftime("%H:%M") for t in c.schedule.at)
        perks.append(Perk(describe_days(c), times, c.name, c.kind, c.id))
    return perks
