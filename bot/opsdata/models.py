"""Pydantic schemas for every kind of file ops staff edit under campaigns/.

These are the contract of DESIGN.md ("Ops data"). Every model forbids unknown keys, so a typo
is reported (with a did-you-mean, by the loader) instead of silently ignored.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from scheduler.durations import parse_duration, parse_time_of_day

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_ZH = {
    "mon": "周一",
    "tue": "周二",
    "wed": "周三",
    "thu": "周四",
    "fri": "周五",
    "sat": "周六",
    "sun": "周日",
}
CampaignKind = Literal[
    "welcome", "daily", "weekly", "monthly", "holiday", "meal", "lottery", "once"
]
Crs = Literal["gcj02", "wgs84", "bd09"]


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, (str, int, date, time)) and not isinstance(value, bool):
        return [value]
    return value


TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Location(_Strict):
    """A point, in the coordinate system it was taken in (WeChat shares GCJ-02)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Crs = "gcj02"

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class ValidWindow(_Strict):
    """Inclusive dates (Asia/Shanghai) between which a campaign may send."""

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ValidWindow:
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError(f"`to` ({self.to}) is before `from` ({self.from_})")
        return self

    def contains(self, day: date) -> bool:
        """True when ``day`` lies inside the window (bounds included)."""
        return (self.from_ is None or day >= self.from_) and (self.to is None or day <= self.to)


class Targets(_Strict):
    """Which groups a campaign reaches.

    A group is reached when it is listed in ``groups``, or when it matches every non-empty one
    of ``cities``, ``districts`` and ``tags`` (any one tag is enough). Empty targets reach every
    group.
    """

    cities: list[str] = []
    districts: list[str] = []
    tags: list[str] = []
    groups: list[str] = []

    _lists = field_validator("cities", "districts", "tags", "groups", mode="before")(
        lambda cls, v: _as_list(v)
    )

    def is_everyone(self) -> bool:
        """True when no criterion is given."""
        return not (self.cities or self.districts or self.tags or self.groups)


class Schedule(_Strict):
    """When a campaign fires. Which keys matter depends on the campaign's kind."""

    at: list[TimeOfDay] = []
    days: list[Weekday] = []
    day_of_month: list[Annotated[int, Field(ge=1, le=31)]] = []
    holidays: list[str] | Literal["all"] = []
    dates: list[date] = []
    workdays_only: bool = False
    cron: str | None = None
    spread: Duration = timedelta(0)

    _lists = field_validator("at", "days", "day_of_month", "dates", mode="before")(
        lambda cls, v: _as_list(v)
    )

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, v: Any) -> Any:
        return v if v == "all" else _as_list(v)

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, v: Any) -> Any:
        return [d.lower() if isinstance(d, str) else d for d in _as_list(v)]


class Campaign(_Strict):
    """One campaign: what to send (a template), to whom (targets) and when (schedule)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str
    kind: CampaignKind
    enabled: bool = True
    valid: ValidWindow = ValidWindow()
    targets: Targets = Targets()
    schedule: Schedule = Schedule()
    template: str
    data: dict[str, Any] = {}
    marketing: bool = True

    @model_validator(mode="after")
    def _schedule_fits_kind(self) -> Campaign:
        s = self.schedule
        if self.kind == "welcome":
            return self
        if self.kind == "lottery":
            # `data.keyword` / `data.draw_at` (docs/lottery.md); an error names the key, so the
            # loader points at it. Imported here: bot.lottery reads these models.
            from bot.lottery.rules import lottery_spec

            lottery_spec(self.data)
        if not s.at and not s.cron:
            raise ValueError(f"a {self.kind} campaign needs `schedule.at` (or `schedule.cron`)")
        if s.cron:
            return self
        if self.kind == "weekly" and not s.days:
            raise ValueError("a weekly campaign needs `schedule.days`, such as [wed]")
        if self.kind == "monthly" and not s.day_of_month:
            raise ValueError("a monthly campaign needs `schedule.day_of_month`, such as [5, 20]")
        if self.kind == "holiday" and not s.holidays:
            raise ValueError("a holiday campaign needs `schedule.holidays` (names, or `all`)")
        if self.kind == "once" and not s.dates:
            raise ValueError("a once campaign needs `schedule.dates`, such as [2026-12-12]")
        return self


class CampaignList(_Strict):
    """A file holding several campaigns under ``campaigns:``."""

    campaigns: list[Campaign]


class WelfareGroup(_Strict):
    """A welfare group chat, tied to a place."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str
    city: str
    district: str = ""
    location: Location
    capacity: int = Field(default=500, ge=1, le=500)
    members: int = Field(default=0, ge=0, description="member count when the directory was written")
    # A factory, not `[]`: pydantic deep-copies a mutable default for every item validated.
    tags: list[str] = Field(default_factory=list)
    manager: str | None = None
    room: str | None = Field(
        default=None,
        description="the chat platform's id of this group chat (e.g. 12345@chatroom); "
        "default: the group id",
    )
    account: str | None = Field(
        default=None,
        description="the bot account that serves this group (config.yaml `accounts:`); "
        "default: assigned by Qunfu, balanced and sticky",
    )


class GroupsFile(_Strict):
    groups: list[WelfareGroup]


class Merchant(_Strict):
    """A merchant near one or more groups, with the offer it gives cardholders."""

    id: str
    name: str
    category: str
    location: Location
    offer: str
    days: list[Weekday] = Field(default_factory=list)  # a factory: see WelfareGroup.tags
    address: str = ""

    _lists = field_validator("days", mode="before")(lambda cls, v: _as_list(v))


class MerchantsFile(_Strict):
    merchants: list[Merchant]


class CustomerManager(_Strict):
    """A bank customer manager who answers escalations by private message."""

    id: str
    name: str
    contact: str
    backup: str | None = None
    """Another manager's id: takes the tickets this manager leaves unanswered too long."""


class ManagersFile(_Strict):
    managers: list[CustomerManager]


class ReferralTier(_Strict):
    count: int = Field(ge=1)
    reward: str


ReferralEventType = Literal["application_submitted", "application_approved", "card_activated"]


class ReferralCaps(_Strict):
    """Most friends counted for one referrer: per window, and per calendar month (Shanghai)."""

    per_referrer: int | None = Field(default=None, ge=0)
    per_referrer_per_month: int | None = Field(default=None, ge=0)


class ReferralProgramme(_Strict):
    """Tiered referral rewards: more qualified friends, bigger reward.

    ``window_days`` opens at a referrer's first counted friend; friends qualifying later than
    that do not count (docs/referrals.md).
    """

    tiers: list[ReferralTier]
    window_days: int = Field(default=90, ge=1)
    qualifying_event: ReferralEventType = "application_approved"
    caps: ReferralCaps = ReferralCaps()

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, v: list[ReferralTier]) -> list[ReferralTier]:
        counts = [t.count for t in v]
        if counts != sorted(set(counts)):
            raise ValueError("tiers must have strictly increasing `count`")
        return v


class ReferralFile(_Strict):
    referral: ReferralProgramme


class FaqEntry(_Strict):
    question: str
    answer: str
    keywords: list[str] = []


class FaqFile(_Strict):
    faq: list[FaqEntry]


class ExtraHoliday(_Strict):
    date: date
    name: str


class CalendarOverrides(_Strict):
    """Ops corrections to the statutory calendar, for years the package does not know yet."""

    holidays: list[ExtraHoliday] = []
    workdays: list[date] = []
    not_holidays: list[date] = []


class CalendarFile(_Strict):
    calendar: CalendarOverrides


class Landmark(_Strict):
    """A named place people type as an address (a mall, a metro station, a campus)."""

    name: str = Field(min_length=1)
    location: Location
    aliases: list[str] = []

    _lists = field_validator("aliases", mode="before")(lambda cls, v: _as_list(v))


class GazetteerDistrict(_Strict):
    """A district of a city: its centre (used when someone picks it from a list) and landmarks."""

    name: str = Field(min_length=1)
    center: Location
    aliases: list[str] = []
    landmarks: list[Landmark] = []

    _lists = field_validator("aliases", mode="before")(lambda cls, v: _as_list(v))


class GazetteerCity(_Strict):
    """A city the entry page offers, with its districts."""

    name: str = Field(min_length=1)
    center: Location
    aliases: list[str] = []
    districts: list[GazetteerDistrict] = Field(min_length=1)

    _lists = field_validator("aliases", mode="before")(lambda cls, v: _as_list(v))

    @model_validator(mode="after")
    def _unique_districts(self) -> GazetteerCity:
        names = [d.name for d in self.districts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"district {dupes[0]!r} is listed twice in {self.name}")
        return self


class GazetteerFile(_Strict):
    """The offline gazetteer: cities, districts and landmarks for the entry page and geocoding."""

    gazetteer: list[GazetteerCity]


class Channel(_Strict):
    """A traffic channel the bank owns (official-account menu, spending alert, poster, referral).

    ``referral: true`` marks the channel whose links carry a person's referral code (``ref=``).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=50)
    name: str
    description: str = ""
    referral: bool = False
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        # The private chat's own channel in the funnel (bot.entry.joins.CHAT_CHANNEL): a live
        # code of that name would mix page visits into it.
        if v == "chat":
            raise ValueError("'chat' is reserved for visits in the private chat; choose another id")
        return v


class ChannelsFile(_Strict):
    channels: list[Channel]


# Top-level key -> schema, in the order the loader tries them. A single campaign is recognised by
# `id` + `kind` and validated with `Campaign`.
FILE_KINDS: dict[str, type[BaseModel]] = {
    "campaigns": CampaignList,
    "groups": GroupsFile,
    "merchants": MerchantsFile,
    "managers": ManagersFile,
    "referral": ReferralFile,
    "faq": FaqFile,
    "calendar": CalendarFile,
    "gazetteer": GazetteerFile,
    "channels": ChannelsFile,
}
