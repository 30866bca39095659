"""Why a campaign sends, or does not send, to a group on a day: the one home for that answer.

``qunfu explain`` prints it group by group; the silent-campaign warnings of ``qunfu check``
(:mod:`bot.campaign_warnings`) summarise it per campaign. Both ask the planner that live sending
and ``qunfu preview`` use (its fire times, targets, quiet hours, spread and merchant
neighbourhoods), so an explanation never disagrees with what is sent. Merchant presence is read
from the neighbourhoods computed once per ops-data version, for every group at once; only
``explain`` renders, per group it shows as sending, to tell a template that renders nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.campaigns import CampaignPlanner, merchant_categories
from bot.opsdata.models import WEEKDAYS, Campaign, Merchant, ValidWindow, WelfareGroup
from bot.opsdata.problems import Loc
from bot.routing import MerchantNeighbourhoods
from bot.templating import TemplateRenderError
from scheduler.clock import SHANGHAI
from scheduler.triggers import occurrences

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Radii tried, in turn, to find the nearest merchant beyond a campaign's radius: a wide search
# at once would measure every merchant in the country for each group asked about.
_NEAREST_STEPS_M = (5_000.0, 25_000.0, 200_000.0, 5_000_000.0)


@dataclass(frozen=True)
class Reason:
    """Why a campaign does not send (somewhere, at some time).

    ``code`` is stable for machines (see docs/ops-guide.en.md, "Why a campaign does not send");
    ``loc`` is where in the campaign the cause is written, e.g. ``("schedule", "at", 0)``;
    ``at`` is the fire time the reason is about, when it is about one.
    """

    code: str
    message: str
    loc: Loc = ()
    at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"code", "message"}`` plus ``"at"`` when the reason is about one fire time."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.at is not None:
            out["at"] = self.at.isoformat()
        return out


def not_targeted(campaign: Campaign, group: WelfareGroup) -> Reason:
    """Why ``campaign``'s targets leave ``group`` out, naming the criterion that does it.

    Targets reach a listed group, or a group matching every non-empty criterion (see
    :class:`~bot.opsdata.models.Targets`); each criterion the group fails is named, with the
    value the group has, so "上海市" written for "上海" shows at once.
    """
    t = campaign.targets
    misses: list[str] = []
    if t.cities and group.city not in t.cities:
        misses.append(f"its city {group.city} is not in targets.cities {_listed(t.cities)}")
    if t.districts and group.district not in t.districts:
        misses.append(
            f"its district {group.district} is not in targets.districts {_listed(t.districts)}"
        )
    if t.tags and not set(t.tags) & set(group.tags):
        misses.append(
            f"its tags {_listed(group.tags)} share none with targets.tags {_listed(t.tags)}"
            if group.tags
            else f"it has no tags, and targets.tags is {_listed(t.tags)}"
        )
    if not misses:  # only `groups:` is given, and this one is not listed
        misses.append(f"it is not in targets.groups {_listed(t.groups)}")
    return Reason("not_targeted", "not targeted: " + "; ".join(misses), ("targets",))


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(values) + "]"


@dataclass(frozen=True)
class GroupVerdict:
    """Whether ``campaign`` sends to ``group`` on ``day``: when, and why not otherwise."""

    campaign: Campaign
    group: WelfareGroup
    day: date
    targeted: bool
    sends_at: tuple[datetime, ...]
    reasons: tuple[Reason, ...]

    @property
    def sends(self) -> bool:
        """True when the group gets at least one message that day."""
        return bool(self.sends_at)

    def as_json(self) -> dict[str, Any]:
        """The ``qunfu explain --json`` line for this group (see the ops guide)."""
        return {
            "campaign": self.campaign.id,
            "date": self.day.isoformat(),
            "group": self.group.id,
            "targeted": self.targeted,
            "sends": self.sends,
            "at": [t.isoformat() for t in self.sends_at],
            "reasons": [r.as_json() for r in self.reasons],
        }


def midnight(day: date) -> datetime:
    """The start of ``day`` in Asia/Shanghai."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def merchant_loc(campaign: Campaign) -> Loc:
    """Where a merchant campaign names its merchant categories (``data.meal`` and the like)."""
    for key in ("categories", "category", "meal"):
        if key in campaign.data:
            return ("data", key)
    return ("data",)


def _listing(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


class CampaignDiagnosis:
    """Answers "does campaign C send to group G on day D, and if not, why?".

    One diagnosis serves one planner (one ops-data version); merchant coverage is computed per
    campaign for every group at once and kept.
    """

    def __init__(self, planner: CampaignPlanner) -> None:
        self.planner = planner
        self._coverage: dict[str, dict[str | None, NDArray[np.bool_]]] = {}
        self._rows: dict[str, int] | None = None
        self._categories: set[str] | None = None
        self._neighbourhoods_by_key: dict[
            tuple[frozenset[str] | None, float], MerchantNeighbourhoods | None
        ] = {}

    # --- the campaign's own day and time rules -----------------------------------------------

    def fires_on(self, campaign: Campaign, day: date) -> list[datetime]:
        """Every fire time of ``campaign`` on ``day``, quiet hours included."""
        return list(self.planner.fire_times(campaign, midnight(day), midnight(day + timedelta(1))))

    def quiet_reason(self, campaign: Campaign, fire_at: datetime) -> Reason | None:
        """The quiet-hours reason when a marketing send at ``fire_at`` is held back, else None."""
        if not self.planner.in_quiet_hours(campaign, fire_at):
            return None
        q = self.planner.quiet
        local = fire_at.astimezone(SHANGHAI)
        return Reason(
            "quiet_hours",
            f"{local:%H:%M} is inside the quiet hours ({q.start:%H:%M}-{q.end:%H:%M}): "
            "marketing is not sent then",
            self.time_loc(campaign, local.time()),
            fire_at,
        )

    def time_loc(self, campaign: Campaign, t: time) -> Loc:
        """Where the time of day ``t`` is written: its ``schedule.at`` entry, or ``cron``."""
        s = campaign.schedule
        if s.cron:
            return ("schedule", "cron")
        for i, at in enumerate(s.at):
            if (at.hour, at.minute, at.second) == (t.hour, t.minute, t.second):
                return ("schedule", "at", i)
        return ("schedule", "at")

    def day_reasons(self, campaign: Campaign, day: date) -> list[Reason]:
        """Why ``campaign`` has no fire time on ``day`` (empty when it has one).

        Every rule that rejects the day is named, most general first, so the first reason is
        the one to fix first.
        """
        if not campaign.enabled:
            return [Reason("disabled", "the campaign is disabled (enabled: false)", ("enabled",))]
        if campaign.kind == "welcome":
            return [
                Reason(
                    "on_join",
                    "a welcome campaign has no schedule: it is sent when members join",
                    ("kind",),
                )
            ]
        if self.fires_on(campaign, day):
            return []
        return self._rejections(campaign, day)

    def _rejections(self, campaign: Campaign, day: date) -> list[Reason]:
        """The rules that reject ``day`` for an enabled, scheduled campaign known not to fire."""
        s, v = campaign.schedule, campaign.valid
        reasons: list[Reason] = []
        if not v.contains(day):
            key = "from" if v.from_ is not None and day < v.from_ else "to"
            reasons.append(
                Reason(
                    "outside_valid",
                    f"outside its valid window ({v.from_ or '…'} to {v.to or '…'})",
                    ("valid", key),
                )
            )
        if s.days and WEEKDAYS[day.weekday()] not in s.days:
            reasons.append(
                Reason(
                    "not_listed_day",
                    f"not one of its days ({_listing(s.days)})",
                    ("schedule", "days"),
                )
            )
        if s.workdays_only and not self.planner.calendar.is_workday(day):
            reasons.append(
                Reason(
                    "not_workday",
                    "not a workday (workdays_only: true)",
                    ("schedule", "workdays_only"),
                )
            )
        kind_reason = self._kind_reason(campaign, day)
        if kind_reason is not None:
            reasons.append(kind_reason)
        if not reasons and s.cron:
            reasons.append(
                Reason(
                    "cron", f"its cron {s.cron!r} does not fire on this day", ("schedule", "cron")
                )
            )
        return reasons or [Reason("no_fire_time", "no fire time on this day", ("schedule",))]

    def _kind_reason(self, campaign: Campaign, day: date) -> Reason | None:
        s = campaign.schedule
        if campaign.kind == "monthly" and s.day_of_month:
            code, loc = "not_bill_day", ("schedule", "day_of_month")
            message = f"not one of its days of the month ({_listing(s.day_of_month)})"
        elif campaign.kind == "holiday" and s.holidays:
            code, loc = "not_holiday", ("schedule", "holidays")
            message = (
                "not a holiday (holidays: all)"
                if s.holidays == "all"
                else f"not one of its holidays ({_listing(s.holidays)})"
            )
        elif campaign.kind == "once" and s.dates:
            code, loc = "not_listed_date", ("schedule", "dates")
            message = f"not one of its dates ({_listing(sorted(s.dates))})"
        else:
            return None
        # Ask the trigger itself, with every other rule lifted, so the kind's day rule (bill
        # days, the holiday break, listed dates) is read from its one home in scheduler/.
        probe = campaign.model_copy(
            update={
                "valid": ValidWindow(),
                "schedule": s.model_copy(
                    update={"days": [], "workdays_only": False, "cron": None, "at": [time(0)]}
                ),
            }
        )
        start = midnight(day)
        fired = next(occurrences(probe, self.planner.calendar, start, start + timedelta(1)), None)
        return None if fired is not None else Reason(code, message, loc)

    # --- merchants ---------------------------------------------------------------------------

    def is_merchant_campaign(self, campaign: Campaign) -> bool:
        """True when the campaign sends only where merchants of its categories are near."""
        return merchant_categories(campaign) is not None

    def _row_of(self) -> dict[str, int]:
        if self._rows is None:
            self._rows = {g.id: i for i, g in enumerate(self.planner.ops.groups.values())}
        return self._rows

    def _neighbourhoods(self, campaign: Campaign) -> MerchantNeighbourhoods | None:
        """Every group's merchants of the campaign's categories within its radius (None: no
        such merchant anywhere).

        Built from the campaign's categories only, so a presence question does not measure
        every (group, merchant) pair of every category; the geometry is routing's, the same
        the planner's context uses, so the answer is the same.
        """
        cats = merchant_categories(campaign) or None
        radius = self.planner.merchant_radius_m(campaign)
        key = (None if cats is None else frozenset(cats), radius)
        if key not in self._neighbourhoods_by_key:
            ops = self.planner.ops
            merchants = [m for m in ops.merchants.values() if cats is None or m.category in cats]
            self._neighbourhoods_by_key[key] = (
                MerchantNeighbourhoods(ops.groups.values(), merchants, radius)
                if merchants and ops.groups
                else None
            )
        return self._neighbourhoods_by_key[key]

    def coverage(self, campaign: Campaign, weekday: str | None) -> NDArray[np.bool_]:
        """For every group (directory order): has a merchant for ``campaign`` on ``weekday``.

        ``weekday`` None asks about any day. The same rule as the planner's context: a
        merchant of one of the campaign's categories within its radius whose offer runs that day.
        """
        per_day = self._coverage.setdefault(campaign.id, {})
        if weekday not in per_day:
            nb = self._neighbourhoods(campaign)
            if nb is None:
                per_day[weekday] = np.zeros(len(self.planner.ops.groups), dtype=bool)
            else:
                sel = nb.selection(nb.radius_m, None, weekday, 1)
                per_day[weekday] = np.diff(sel.start) > 0
        return per_day[weekday]

    def categories(self) -> set[str]:
        """Every merchant category in the directory."""
        if self._categories is None:
            self._categories = {m.category for m in self.planner.ops.merchants.values()}
        return self._categories

    def rows(self, groups: Iterable[WelfareGroup]) -> NDArray[np.int64]:
        """Directory rows of ``groups`` (the rows of :meth:`coverage`)."""
        row_of = self._row_of()
        return np.array([row_of[g.id] for g in groups], dtype=np.int64)

    def groups_without_merchants(
        self, campaign: Campaign, weekdays: Iterable[str] | None = None
    ) -> list[WelfareGroup]:
        """Targeted groups with no merchant for ``campaign`` within its radius.

        With ``weekdays``: none whose offer runs on one of those days (the days the campaign
        fires); without: none on any day.
        """
        targets = self.planner.targets(campaign)
        if not targets:
            return []
        days: list[str | None] = [None] if weekdays is None else [*sorted(set(weekdays))]
        has = np.zeros(len(self.planner.ops.groups), dtype=bool)
        for wd in days:
            has |= self.coverage(campaign, wd)
        covered = has[self.rows(targets)]
        return [g for g, ok in zip(targets, covered.tolist(), strict=True) if not ok]

    def send_weekdays(self, campaign: Campaign, first: date, last: date) -> set[str]:
        """The weekdays on which ``campaign`` fires outside quiet hours, ``first``..``last``."""
        fires = self.planner.fire_times(campaign, midnight(first), midnight(last + timedelta(1)))
        return {
            WEEKDAYS[f.astimezone(SHANGHAI).weekday()]
            for f in fires
            if not self.planner.in_quiet_hours(campaign, f)
        }

    def nearest_merchant(
        self, campaign: Campaign, group: WelfareGroup
    ) -> tuple[Merchant, float] | None:
        """The nearest merchant of the campaign's categories at any distance, or None."""
        nb = self._neighbourhoods(campaign)
        if nb is None:
            return None
        loc = group.location
        for radius in _NEAREST_STEPS_M:
            found = nb.merchants.near(loc.lat, loc.lon, loc.crs, radius_m=radius, limit=1)
            if found:
                return found[0]
        return None

    def merchant_reason(
        self, campaign: Campaign, group: WelfareGroup, weekday: str
    ) -> Reason | None:
        """Why ``group`` gets nothing from a merchant campaign on ``weekday``, or None."""
        if not self.is_merchant_campaign(campaign):
            return None
        row = self._row_of()[group.id]
        if self.coverage(campaign, weekday)[row]:
            return None
        cats = merchant_categories(campaign) or []
        radius = self.planner.merchant_radius_m(campaign)
        what = "/".join(cats) if cats else "any category"
        loc = merchant_loc(campaign)
        known = self.categories()
        if cats and not known & set(cats):
            return Reason(
                "no_merchant_category",
                f"no merchant is filed under {what} (categories that exist: "
                f"{_listing(sorted(known)) or 'none'})",
                loc,
            )
        if self.coverage(campaign, None)[row]:
            day_name = WEEKDAY_NAMES[WEEKDAYS.index(weekday)]
            return Reason(
                "no_merchant_that_day",
                f"no merchant of category {what} within {radius:g} m has an offer on "
                f"{day_name} (some do on other days)",
                loc,
            )
        nearest = self.nearest_merchant(campaign, group)
        beyond = (
            f"; the nearest is {nearest[0].name} at {round(nearest[1])} m"
            if nearest is not None
            else ""
        )
        where = ("data", "radius_m") if "radius_m" in campaign.data else loc
        return Reason(
            "no_merchant_near",
            f"no merchant of category {what} within {radius:g} m{beyond}",
            where,
        )

    def render_reason(
        self, campaign: Campaign, group: WelfareGroup, fire_at: datetime
    ) -> Reason | None:
        """Why ``group`` gets no message although it is due one: its template renders nothing
        for it (an ``{% if %}`` that leaves it out) or fails for it; None when it renders.

        Rendered with the very context the fan-out builds, so it agrees with what is sent.
        """
        ctx = self.planner.context(campaign, group, fire_at)
        if ctx is None:
            return None
        try:
            text = self.planner.renderer.render(campaign.template, ctx)
        except TemplateRenderError as e:
            message = f"its template fails for this group: {e}"
            return Reason("template_error", message, ("template",))
        if text:
            return None
        return Reason(
            "blank_render",
            f"the template {campaign.template} renders nothing for this group (an empty "
            "message is never sent)",
            ("template",),
        )

    # --- per group, per day ------------------------------------------------------------------

    def explain(
        self, campaign: Campaign, day: date, groups: Iterable[WelfareGroup] | None = None
    ) -> Iterator[GroupVerdict]:
        """A verdict for each of ``groups`` (default: every group in the directory, id order)."""
        chosen = (
            sorted(self.planner.ops.groups.values(), key=lambda g: g.id)
            if groups is None
            else list(groups)
        )
        fires = self.fires_on(campaign, day) if campaign.enabled else []
        common = self.day_reasons(campaign, day) if not fires else []
        sendable: list[datetime] = []
        for fire_at in fires:
            quiet = self.quiet_reason(campaign, fire_at)
            if quiet is None:
                sendable.append(fire_at)
            else:
                common.append(quiet)
        targeted_ids = {g.id for g in self.planner.targets(campaign)}
        weekday = WEEKDAYS[day.weekday()]
        for group in chosen:
            targeted = group.id in targeted_ids
            reasons = list(common)
            if not targeted:
                reasons.append(not_targeted(campaign, group))
            sends: tuple[datetime, ...] = ()
            if targeted and sendable:
                merchant = self.merchant_reason(campaign, group, weekday)
                if merchant is None:
                    merchant = self.render_reason(campaign, group, sendable[0])
                if merchant is not None:
                    reasons.append(merchant)
                else:
                    offset = self.planner.spread_offset(campaign, group)
                    sends = tuple(f + offset for f in sendable)
            yield GroupVerdict(campaign, group, day, targeted, sends, tuple(reasons))

    # --- over a span of days -----------------------------------------------------------------

    def silence(self, campaign: Campaign, first: date, last: date) -> Reason | None:
        """The main reason ``campaign`` sends nothing on ``first``..``last``; None if it sends.

        Campaign-wide: no fire time (the most frequent day rule), every fire time in quiet
        hours, targets that match no group, or no targeted group with a merchant on the days
        it fires. Per-group gaps are for :meth:`groups_without_merchants`.
        """
        if not campaign.enabled or campaign.kind == "welcome":
            return self.day_reasons(campaign, first)[0]
        start, end = midnight(first), midnight(last + timedelta(1))
        fires = list(self.planner.fire_times(campaign, start, end))
        if not fires:
            tally: Counter[str] = Counter()
            example: dict[str, Reason] = {}
            day = first
            while day <= last:
                reason = self._rejections(campaign, day)[0]
                tally[reason.code] += 1
                example.setdefault(reason.code, reason)
                day += timedelta(1)
            ranked = tally.most_common()
            top = example[ranked[0][0]]
            if len(ranked) == 1:
                return top
            # Rules that each reject some of the days (weekend days, yet workdays only): name
            # them all, so the conflict is visible; the location is the most frequent one's.
            parts = [f"{example[code].message} on {n} day(s)" for code, n in ranked]
            return Reason(top.code, "; ".join(parts), top.loc)
        sendable = [f for f in fires if not self.planner.in_quiet_hours(campaign, f)]
        if not sendable:
            return self.quiet_reason(campaign, fires[0])
        targets = self.planner.targets(campaign)
        if not targets:
            return Reason("no_targets", "its targets match no group", ("targets",))
        if not self.is_merchant_campaign(campaign):
            return None
        rows = self.rows(targets)
        for wd in sorted({WEEKDAYS[f.astimezone(SHANGHAI).weekday()] for f in sendable}):
            if self.coverage(campaign, wd)[rows].any():
                return None
        cats = merchant_categories(campaign) or []
        return Reason(
            "no_merchant_near",
            f"no targeted group has a merchant of category {'/'.join(cats) or 'any'} within "
            f"{self.planner.merchant_radius_m(campaign):g} m on the days it fires",
            merchant_loc(campaign),
        )


# --- text for people -------------------------------------------------------------------------


def explain_header(
    diagnosis: CampaignDiagnosis, campaign: Campaign, day: date, verdicts: list[GroupVerdict]
) -> str:
    """The lines ``qunfu explain`` prints above the groups: the day's schedule and a count."""
    lines = [
        f"{campaign.id} · {campaign.name} ({campaign.kind}) on {day}, "
        f"{WEEKDAY_NAMES[day.weekday()]}"
    ]
    fires = diagnosis.fires_on(campaign, day) if campaign.enabled else []
    if fires:
        times = ", ".join(f"{f.astimezone(SHANGHAI):%H:%M}" for f in fires)
        spread = campaign.schedule.spread
        spread_text = f", spread over {_duration(spread)}" if spread else ""
        lines.append(f"fires at {times}{spread_text}")
    else:
        why = "; ".join(r.message for r in diagnosis.day_reasons(campaign, day))
        lines.append(f"no fire time on this day: {why}")
    sending = sum(v.sends for v in verdicts)
    targeted = sum(v.targeted for v in verdicts)
    lines.append(f"sends to {sending} of {len(verdicts)} group(s) shown ({targeted} targeted)")
    return "\n".join(lines)


def format_verdict(verdict: GroupVerdict) -> str:
    """One line per group: ``ID  NAME  sends at 09:09`` or ``ID  NAME  no: reason; reason``."""
    head = f"{verdict.group.id}  {verdict.group.name}"
    if verdict.sends:
        times = ", ".join(f"{t.astimezone(SHANGHAI):%H:%M}" for t in verdict.sends_at)
        skipped = [r.message for r in verdict.reasons]
        tail = f" (not at: {'; '.join(skipped)})" if skipped else ""
        return f"{head}  sends at {times}{tail}"
    return f"{head}  no: " + "; ".join(r.message for r in verdict.reasons)


def _duration(d: timedelta) -> str:
    minutes, seconds = divmod(int(d.total_seconds()), 60)
    return f"{minutes}m" if not seconds else f"{minutes}m{seconds}s"
