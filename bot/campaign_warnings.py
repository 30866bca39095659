"""Warnings for campaigns that are valid but will not do what their author surely meant.

Registered in :data:`bot.opsdata.lint.CHECKS`, so ``qunfu check`` prints them as
``PATH:LINE:COL: warning: message`` at the campaign's own lines. The reasons come from
:mod:`bot.diagnosis` (the same answers ``qunfu explain`` gives). Every check works per campaign
or per pair of campaigns, never per group and day: targets are matched once per campaign and
merchant presence is read from the neighbourhoods computed for all groups at once, so a
20,000-group directory costs seconds, not minutes. A template is rendered group by group only
when it may render nothing (see :meth:`TemplateRenderer.always_prints`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import combinations
from typing import TYPE_CHECKING

from bot.campaigns import CampaignPlanner, merchant_categories
from bot.diagnosis import CampaignDiagnosis, merchant_loc, midnight
from bot.lottery.rules import draw_time_text, draw_weekday_and_time, lottery_spec
from bot.opsdata.bundle import OpsData, Source
from bot.opsdata.models import WEEKDAYS, Campaign, WelfareGroup
from bot.opsdata.problems import Problem
from bot.perks import cron_times
from bot.templating import TemplateRenderer, TemplateRenderError, sample_context
from scheduler.calendar import WorkCalendar
from scheduler.clock import SHANGHAI

if TYPE_CHECKING:
    from bot.config import Settings

HORIZON_DAYS = 14
"""A campaign that sends nothing in this many days (or in its valid window) is reported."""
OVERLAP = timedelta(minutes=30)
"""Two campaigns of one kind reaching one group closer than this are reported."""
_LONG_HORIZON_DAYS = 366
_EXAMPLES = 3


def campaign_warnings(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    """Every silent-campaign warning for ``ops`` at ``now`` (see the module docstring)."""
    planner = CampaignPlanner(
        ops, settings.quiet_hours, merchant_radius_m=settings.routing.merchant_radius_m
    )
    diag = CampaignDiagnosis(planner)
    today = now.astimezone(SHANGHAI).date()
    found: list[Problem] = []
    for campaign in sorted(ops.campaigns.values(), key=lambda c: c.id):
        source = ops.campaign_sources.get(campaign.id)
        if source is None:
            continue
        found += _CampaignCheck(diag, campaign, source, today, planner.renderer).run()
    found += _overlaps(diag, ops, today)
    found += _welcome_clashes(diag, ops, settings.welcome.campaign)
    return found


def _welcome_clashes(diag: CampaignDiagnosis, ops: OpsData, chosen: str | None) -> list[Problem]:
    """Welcome campaigns a group never gets because another one reaches it first.

    A joining group gets one welcome: ``welcome.campaign`` in config.yaml when set, else the
    first by id of the enabled welcomes reaching it that day (:meth:`WelcomeService.
    welcome_campaign`). Each other welcome reaching the same groups in overlapping valid windows
    is reported at its own ``id``, naming the one used.
    """
    welcomes = [c for c in ops.campaigns_of_kind("welcome") if c.id in ops.campaign_sources]
    out = []
    for i, c in enumerate(welcomes):
        source = ops.campaign_sources[c.id]
        if chosen is not None:
            if c.id != chosen and chosen in ops.campaigns:
                out.append(
                    source.warning(
                        ("id",),
                        f"welcome.campaign in config.yaml is {chosen!r}: this welcome is "
                        "never sent",
                    )
                )
            continue
        reached = {g.id for g in diag.planner.targets(c)}
        for first in welcomes[:i]:
            if not _windows_meet(first, c):
                continue
            shared = sorted(reached & {g.id for g in diag.planner.targets(first)})
            if not shared:
                continue
            shown = ", ".join(shared[:_EXAMPLES]) + (", …" if len(shared) > _EXAMPLES else "")
            out.append(
                source.warning(
                    ("id",),
                    f"welcome {first.id!r} also reaches {len(shared)} of its group(s) "
                    f"({shown}): newcomers there get {first.id!r} (the first by id) and never "
                    "this one; narrow the targets, or set welcome.campaign in config.yaml",
                )
            )
            break
    return out


def _windows_meet(a: Campaign, b: Campaign) -> bool:
    """True when the valid windows of ``a`` and ``b`` share a day."""
    starts = [d for d in (a.valid.from_, b.valid.from_) if d is not None]
    ends = [d for d in (a.valid.to, b.valid.to) if d is not None]
    return not starts or not ends or max(starts) <= min(ends)


@dataclass
class _CampaignCheck:
    diag: CampaignDiagnosis
    campaign: Campaign
    source: Source
    today: date
    renderer: TemplateRenderer

    @property
    def now(self) -> datetime:
        return midnight(self.today)

    def run(self) -> list[Problem]:
        out = self.targets() + self.cron_and_at() + self.draw_time()
        c = self.campaign
        if not c.enabled:
            return out  # sends nothing on purpose; a target typo is still worth fixing
        past = self.past()
        if past:
            return out + past
        out += self.blank()
        said = {"no_targets"} if out else set()
        if c.kind == "welcome":
            return out
        quiet = self.quiet()
        if quiet:
            said.add("quiet_hours")
        unknown = self.holiday_names()
        if unknown:
            said.add("not_holiday")
        merchants = self.merchants()
        if merchants:
            said |= {"no_merchant_near", "no_merchant_category"}
        return out + quiet + unknown + merchants + self.silence(said)

    def warn(self, loc: tuple[object, ...], message: str) -> Problem:
        return self.source.warning(loc, message)

    def targets(self) -> list[Problem]:
        """Each city, district or tag no group has; or targets that match nothing together."""
        groups = self.diag.planner.ops.groups.values()
        known = {
            "cities": ("city", {g.city for g in groups}),
            "districts": ("district", {g.district for g in groups if g.district}),
            "tags": ("tag", {t for g in groups for t in g.tags}),
        }
        names = {name: field for field, (name, values) in known.items() for name in values}
        ids = {g.id for g in groups}
        t = self.campaign.targets
        out = []
        for field, (label, values) in known.items():
            for i, value in enumerate(getattr(t, field)):
                if value in values:
                    continue
                if value in names:
                    other = known[names[value]][0]
                    hint = f": {value!r} is a {other}; list it under `targets.{names[value]}`"
                elif value in ids:
                    hint = f": {value!r} is a group id; list it under `targets.groups`"
                else:
                    everything = {n: known[f][0] for n, f in names.items()}
                    everything.update((gid, "group id") for gid in ids)
                    hint = _did_you_mean(value, everything)
                out.append(
                    self.warn(("targets", field, i), f"{label} {value!r} matches no group{hint}")
                )
        # Only unknown ids in `targets.groups`: the loader's error says so; "match all of these
        # cities, districts and tags together" would point at criteria never written.
        only_groups = not (t.cities or t.districts or t.tags)
        if only_groups and any(g not in ids for g in t.groups):
            return out
        if not out and not t.is_everyone() and not self.diag.planner.targets(self.campaign):
            out.append(
                self.warn(
                    ("targets",),
                    "no group matches all of these targets together (a group must match every "
                    "listed one of cities, districts and tags): the campaign reaches no group",
                )
            )
        return out

    def blank(self) -> list[Problem]:
        """Targeted groups for which the template renders nothing (they get no message).

        Rendered group by group with each group's own values (and sample merchants, members and
        perks), but only when the template may render nothing at all: one with literal text
        outside every ``{% if %}`` cannot, and is not rendered.
        """
        c, renderer = self.campaign, self.renderer
        ops = self.diag.planner.ops
        if c.template not in ops.templates or renderer.always_prints(c.template):
            return []
        targets = self.diag.planner.targets(c)
        empty: list[WelfareGroup] = []
        for g in targets:
            try:
                text = renderer.render(c.template, sample_context(c, ops, self.now, g.id))
            except TemplateRenderError:
                continue  # reported with the template checks
            if not text:
                empty.append(g)
        if not empty:
            return []
        n = len(targets)
        which = (
            f"every one of the {n} targeted group(s)"
            if len(empty) == n
            else f"{len(empty)} of {n} targeted group(s)"
        )
        return [
            self.warn(
                ("template",),
                f"{c.template} renders nothing for {which} ({_examples(empty)}): they get no "
                f"message (an empty message is never sent); "
                f"`qunfu explain {c.id} --group {empty[0].id}` shows it",
            )
        ]

    def cron_and_at(self) -> list[Problem]:
        """``at`` written beside ``cron``: the cron's times replace it, so it is never used."""
        s = self.campaign.schedule
        if not s.cron or not s.at or self.campaign.kind == "welcome":
            return []
        times = cron_times(s.cron)
        fires = (
            f"at {', '.join(f'{t:%H:%M}' for t in times)}"
            if times
            else f"at the cron's times ({s.cron})"
        )
        written = ", ".join(f"{t:%H:%M}" for t in s.at)
        return [
            self.warn(
                ("schedule", "at"),
                f"`at` is ignored when `cron` is given: the campaign fires {fires}, "
                f"never at {written}; remove `at` (or remove `cron` to send at {written})",
            )
        ]

    def draw_time(self) -> list[Problem]:
        """A lottery's ``data.draw_time`` text naming another weekday or time than ``draw_at``
        (the announcement would promise a draw that happens at another time)."""
        c = self.campaign
        text = c.data.get("draw_time")
        if c.kind != "lottery" or not isinstance(text, str) or "draw_at" not in c.data:
            return []
        try:
            spec = lottery_spec(c.data)
        except ValueError:
            return []  # reported by the loader at `data.draw_at`
        fire = self.diag.planner.next_fire(c, midnight(self.today))
        if spec is None or fire is None:
            return []
        drawn = spec.draw_at(fire)
        day, at = draw_weekday_and_time(text)
        if (day is None or day == drawn.weekday()) and (at is None or at == drawn.time()):
            return []
        return [
            self.warn(
                ("data", "draw_time"),
                f"says {text!r}, but the draw happens at draw_at {c.data['draw_at']!r} (e.g. "
                f"the round announced {fire:%Y-%m-%d %H:%M} is drawn {draw_time_text(drawn)}): "
                "print `{{ lottery.draw_time }}` in the template instead (it comes from "
                "draw_at), or make the two agree",
            )
        ]

    def holiday_names(self) -> list[Problem]:
        """Each name in ``schedule.holidays`` that names no holiday (it never matches a day)."""
        c = self.campaign
        if c.kind != "holiday" or c.schedule.holidays == "all":
            return []
        known = _holiday_names(self.diag.planner.calendar, self.today.year)
        out = []
        for i, name in enumerate(c.schedule.holidays):
            wanted = name.strip()
            if not wanted or any(k.startswith(wanted) for k in known):
                continue
            hint = _did_you_mean(wanted, {k: "holiday" for k in known})
            out.append(
                self.warn(
                    ("schedule", "holidays", i),
                    f"no holiday is called {name!r}{hint}: it matches no day; names: "
                    f"{', '.join(known)} (or `all`)",
                )
            )
        return out

    def past(self) -> list[Problem]:
        """A valid window (or every date of a once campaign) already over."""
        c, today = self.campaign, self.today
        if c.valid.to is not None and c.valid.to < today:
            days = (today - c.valid.to).days
            return [
                self.warn(
                    ("valid", "to"),
                    f"the valid window ended on {c.valid.to} ({days} day(s) ago): "
                    "the campaign sends nothing any more",
                )
            ]
        if c.kind == "once" and c.schedule.dates and max(c.schedule.dates) < today:
            return [
                self.warn(
                    ("schedule", "dates"),
                    f"every date is past (the last was {max(c.schedule.dates)}): "
                    "the campaign sends nothing any more",
                )
            ]
        return []

    def quiet(self) -> list[Problem]:
        """Each send time inside the quiet hours (a marketing send then is held back)."""
        c, planner = self.campaign, self.diag.planner
        q = planner.quiet
        if not c.marketing:
            return []
        span = f"{q.start:%H:%M}-{q.end:%H:%M}"
        out = [
            self.warn(
                ("schedule", "at", i),
                f"{t:%H:%M} is inside the quiet hours ({span}, config quiet_hours): "
                "marketing sends at that time are skipped",
            )
            for i, t in enumerate(c.schedule.at)
            if not c.schedule.cron and q.contains(t)
        ]
        if c.schedule.cron:
            start = midnight(self.today)
            end = start + timedelta(days=HORIZON_DAYS)
            quiet = [f for f in planner.fire_times(c, start, end) if planner.in_quiet_hours(c, f)]
            if quiet:
                out.append(
                    self.warn(
                        ("schedule", "cron"),
                        f"cron fires inside the quiet hours ({span}, config quiet_hours), e.g. "
                        f"{quiet[0]:%Y-%m-%d %H:%M}: marketing sends then are skipped",
                    )
                )
        return out

    def merchants(self) -> list[Problem]:
        """Categories no merchant has, and targeted groups with no merchant within the radius."""
        c, diag = self.campaign, self.diag
        cats = merchant_categories(c)
        targets = diag.planner.targets(c)
        if cats is None or not targets:
            return []
        known = sorted({m.category for m in diag.planner.ops.merchants.values()})
        missing = [x for x in cats if x not in known]
        n = len(targets)
        if cats and len(missing) == len(cats):
            hint = "".join(_did_you_mean(x, {k: "category" for k in known}) for x in missing)
            return [
                self.warn(
                    merchant_loc(c),
                    f"no merchant is filed under {'/'.join(missing)}{hint}; categories that "
                    f"exist: {', '.join(known) or 'none'}: none of the {n} targeted group(s) "
                    "gets anything",
                )
            ]
        out = []
        if missing:
            hint = "".join(_did_you_mean(x, {k: "category" for k in known}) for x in missing)
            out.append(
                self.warn(
                    merchant_loc(c),
                    f"no merchant is filed under {'/'.join(missing)}{hint}; categories that "
                    f"exist: {', '.join(known)}",
                )
            )
        radius = diag.planner.merchant_radius_m(c)
        what = "/".join(cats) or "any"
        where = ("data", "radius_m") if "radius_m" in c.data else merchant_loc(c)
        without = diag.groups_without_merchants(c)
        if without:
            out.append(
                self.warn(
                    where,
                    f"{len(without)} of {n} targeted group(s) have no {what} merchant within "
                    f"{radius:g} m and get nothing ({_examples(without)}); "
                    f"`qunfu explain {c.id} --group ID` names the nearest",
                )
            )
        first, last, _ = _window(c, self.today)
        days = diag.send_weekdays(c, first, last) if first <= last else set()
        if days and len(days) < len(WEEKDAYS):
            # Merchants near, but none with an offer on the days the campaign fires.
            gone = {g.id for g in without}
            shut = [g for g in diag.groups_without_merchants(c, days) if g.id not in gone]
            if shut:
                listed = ", ".join(d for d in WEEKDAYS if d in days)
                out.append(
                    self.warn(
                        merchant_loc(c),
                        f"{len(shut)} of {n} targeted group(s) have {what} merchants within "
                        f"{radius:g} m but none with an offer on the days it fires ({listed}), "
                        f"and get nothing ({_examples(shut)}); see the merchants' `days`",
                    )
                )
        return out

    def silence(self, said: set[str]) -> list[Problem]:
        """Nothing sent in the next days (or the valid window), unless already said why."""
        first, last, span = _window(self.campaign, self.today)
        if last < first:
            return []
        reason = self.diag.silence(self.campaign, first, last)
        if reason is None or reason.code in said:
            return []
        message = f"sends nothing {span} ({first} to {last}): {reason.message}"
        return [self.warn(reason.loc, message)]


def _holiday_names(calendar: WorkCalendar, year: int) -> list[str]:
    """The holiday names of this year and the next (statutory, then the ops calendar's), as
    ``schedule.holidays`` takes them: 春节 for 春节（补假）; days off swapped for a make-up
    workday (休息日（由 … 调休）) are not holidays of their own."""
    names: dict[str, None] = {}
    day, end = date(year, 1, 1), date(year + 2, 1, 1)
    while day < end:
        for name in calendar.holiday_names(day):
            base = name.split("（")[0].split("(")[0].strip()
            if base and base != "休息日":
                names[base] = None
        day += timedelta(1)
    return sorted(names, key=lambda n: (_HOLIDAY_ORDER.get(n, 99), n))


_HOLIDAY_ORDER = {
    n: i for i, n in enumerate(("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"))
}


def _window(campaign: Campaign, today: date) -> tuple[date, date, str]:
    """The days over which a campaign is expected to send, and how to name them."""
    s, v = campaign.schedule, campaign.valid
    horizon = HORIZON_DAYS
    # Kinds with a longer natural period are given it, or every holiday campaign would be
    # reported for most of the year and a bill-day campaign for half of each month.
    if campaign.kind == "monthly":
        horizon = 31
    elif campaign.kind == "holiday" or (s.cron and s.cron.split()[2:4] != ["*", "*"]):
        horizon = _LONG_HORIZON_DAYS
    elif campaign.kind == "once" and s.dates:
        horizon = max(horizon, (max(s.dates) - today).days + 1)
    if v.from_ is not None and v.from_ > today:
        first = v.from_
        last = v.to if v.to is not None else first + timedelta(days=horizon - 1)
        last = min(last, first + timedelta(days=max(horizon, _LONG_HORIZON_DAYS) - 1))
        span = (
            "in its valid window"
            if v.to is not None
            else f"in the first {horizon} days of its valid window"
        )
        return first, last, span
    last = today + timedelta(days=horizon - 1)
    span = f"in the next {horizon} days"
    if v.to is not None and v.to < last:
        last, span = v.to, "before its valid window ends"
    return today, last, span


def _overlaps(diag: CampaignDiagnosis, ops: OpsData, today: date) -> list[Problem]:
    """Two enabled campaigns of one kind reaching one group within :data:`OVERLAP`."""
    planner = diag.planner
    scheduled = [c for c in planner.scheduled_campaigns() if c.id in ops.campaign_sources]
    out = []
    for a, b in combinations(scheduled, 2):
        if a.kind != b.kind:
            continue
        first = max(today, a.valid.from_ or today, b.valid.from_ or today)
        last = max(_window(a, first)[1], _window(b, first)[1])
        ends = [d for d in (a.valid.to, b.valid.to) if d is not None]
        if ends:
            last = min([last, *ends])
        if last < first:
            continue
        clash = _first_clash(diag, a, b, first, last)
        if clash is None:
            continue
        at_a, at_b = clash
        shared = _reached(diag, a) & _reached(diag, b)
        if not shared:
            continue
        # Reported at the later of the two: by time, then by where it is written.
        pos = {c.id: _position(ops.campaign_sources[c.id]) for c in (a, b)}
        later, other, at_later, at_other = (
            (b, a, at_b, at_a) if (at_b, pos[b.id]) > (at_a, pos[a.id]) else (a, b, at_a, at_b)
        )
        groups = sorted(shared)
        out.append(
            ops.campaign_sources[later.id].warning(
                diag.time_loc(later, at_later.astimezone(SHANGHAI).time()),
                f"reaches {len(groups)} group(s) that {other.id!r} ({other.kind}) also reaches "
                f"within {int(OVERLAP.total_seconds() // 60)} minutes "
                f"({at_other:%Y-%m-%d %H:%M} and {at_later:%H:%M}; e.g. "
                f"{', '.join(groups[:_EXAMPLES])}{', …' if len(groups) > _EXAMPLES else ''}): "
                f"members get two {later.kind} messages at once",
            )
        )
    return out


def _first_clash(
    diag: CampaignDiagnosis, a: Campaign, b: Campaign, first: date, last: date
) -> tuple[datetime, datetime] | None:
    planner = diag.planner
    start, end = midnight(first), midnight(last + timedelta(1))

    def sendable(c: Campaign) -> list[datetime]:
        return [f for f in planner.fire_times(c, start, end) if not planner.in_quiet_hours(c, f)]

    fa, fb = sendable(a), sendable(b)
    i = j = 0
    while i < len(fa) and j < len(fb):
        if abs(fa[i] - fb[j]) <= OVERLAP:
            return fa[i], fb[j]
        if fa[i] < fb[j]:
            i += 1
        else:
            j += 1
    return None


def _reached(diag: CampaignDiagnosis, campaign: Campaign) -> set[str]:
    """Ids of the groups a campaign can send to (merchant campaigns: groups with merchants)."""
    targets = diag.planner.targets(campaign)
    if not diag.is_merchant_campaign(campaign) or not targets:
        return {g.id for g in targets}
    has = diag.coverage(campaign, None)[diag.rows(targets)]
    return {g.id for g, ok in zip(targets, has.tolist(), strict=True) if ok}


def _position(source: Source) -> tuple[str, int, int]:
    p = source.warning((), "")
    return str(p.path), p.line, p.col


def _examples(groups: list[WelfareGroup]) -> str:
    shown = ", ".join(g.id for g in groups[:_EXAMPLES])
    return shown + (", …" if len(groups) > _EXAMPLES else "")


def _did_you_mean(word: str, choices: dict[str, str]) -> str:
    """`` (did you mean the city '上海'?)`` for the closest real name, or an empty string.

    The cutoff is lower than difflib's default: Chinese names are short, and one character in
    two (早点 for 早餐) is the typical slip.
    """
    guess = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.5)
    if not guess:
        return ""
    return f" (did you mean the {choices[guess[0]]} {guess[0]!r}?)"
