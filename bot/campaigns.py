"""Campaigns: from schedule to rendered text for each group.

:class:`CampaignPlanner` is the one place that turns ops data into concrete deliveries; live
scheduling (:mod:`bot.scheduling`) and ``qunfu preview`` both call it, so what preview shows is
what the bot sends.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from heapq import merge
from typing import Any

from loguru import logger

from bot.accounts import AccountMap
from bot.config import AccountSettings, QuietHours
from bot.lottery.rules import lottery_context
from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WEEKDAYS, Campaign, WelfareGroup
from bot.perks import perk_calendar
from bot.routing import MerchantNeighbourhoods
from bot.templating import TemplateRenderer, TemplateRenderError
from scheduler.calendar import WorkCalendar
from scheduler.clock import SHANGHAI
from scheduler.triggers import occurrences

# A meal campaign names the meal in `data.meal`; merchants are filed under the same word.
MERCHANT_KINDS = ("meal",)


@dataclass(frozen=True)
class Delivery:
    """One rendered message a campaign sends to one group at one occurrence."""

    fire_at: datetime
    send_at: datetime
    group: WelfareGroup
    campaign: Campaign
    text: str
    account: str = ""
    """The bot account that sends it (the group's)."""

    @property
    def key(self) -> str:
        """Idempotency key: campaign + group + occurrence."""
        at = self.fire_at
        return f"{self.campaign.id}:{self.group.id}:{_stamp(at, at.utcoffset())}"


@functools.lru_cache(maxsize=256)
def _stamp(fire_at: datetime, offset: timedelta | None) -> str:
    """``fire_at.isoformat()``, formatted once for the 20,000 deliveries sharing it. The offset
    is part of the cache key: equal instants in two zones are equal datetimes, but their text
    differs."""
    return fire_at.isoformat()


def send_summary(deliveries: Iterable[Delivery]) -> str:
    """One line: how many sends, and how many per campaign, most first.

    For example ``12 sends: lunch-deals 10, daily-checkin 2``; ``0 sends`` when there is none.
    """
    per_campaign = Counter(d.campaign.id for d in deliveries)
    total = sum(per_campaign.values())
    head = f"{total} send{'' if total == 1 else 's'}"
    if not total:
        return head
    ranked = sorted(per_campaign.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"{head}: " + ", ".join(f"{cid} {n}" for cid, n in ranked)


def group_context(group: WelfareGroup) -> dict[str, Any]:
    """The ``group`` value templates see."""
    return {
        "id": group.id,
        "name": group.name,
        "city": group.city,
        "district": group.district,
        "tags": list(group.tags),
    }


def campaign_context(campaign: Campaign) -> dict[str, Any]:
    """The ``campaign`` value templates see."""
    return {"id": campaign.id, "name": campaign.name, "kind": campaign.kind}


def merchant_categories(campaign: Campaign) -> list[str] | None:
    """Merchant categories a campaign lists, or None when it lists no merchants."""
    cats = campaign.data.get("categories") or campaign.data.get("category")
    if cats:
        return [cats] if isinstance(cats, str) else [str(c) for c in cats]
    if campaign.kind in MERCHANT_KINDS:
        meal = campaign.data.get("meal")
        return [str(meal)] if meal else []
    return None


def planner_data_keys(kind: str) -> frozenset[str]:
    """The ``data`` keys the planner itself may read for a campaign of ``kind``.

    Any campaign may list merchant ``category`` / ``categories``, and then its ``radius_m`` and
    ``limit`` choose them; a meal campaign also names its ``meal``; a lottery its ``keyword``,
    ``draw_at``, ``winners`` and ``prizes``. Templates read the others.
    """
    keys = {"category", "categories", "radius_m", "limit"}
    if kind == "lottery":  # read by bot.lottery (docs/lottery.md)
        keys |= {"keyword", "draw_at", "winners", "prizes"}
    return frozenset(keys | {"meal"} if kind in MERCHANT_KINDS else keys)


class CampaignPlanner:
    """Computes when campaigns fire and what each targeted group receives."""

    def __init__(
        self,
        ops: OpsData,
        quiet: QuietHours,
        *,
        merchant_radius_m: float = 1500,
        merchant_limit: int = 5,
        accounts: AccountMap | None = None,
        few_groups: bool = False,
    ) -> None:
        self.ops = ops
        # Only a few groups will be planned (`qunfu preview --group`): their merchants are
        # measured one group at a time rather than every group's neighbourhood computed.
        self._few_groups = few_groups
        # Which account serves each group; without one, every group on one default account.
        self.accounts = accounts or AccountMap(
            (AccountSettings.model_construct(id="bot", name="群福助手"),)
        )
        self.quiet = quiet
        self.calendar = WorkCalendar(ops.calendar)
        self.renderer = TemplateRenderer(ops.templates)
        self._neighbourhoods: MerchantNeighbourhoods | None = None
        self._merchant_radius_m = merchant_radius_m
        self._merchant_limit = merchant_limit
        self._targets: dict[str, list[WelfareGroup]] = {}
        self._positions: dict[str, dict[str, tuple[int, int]]] = {}
        self._perks: dict[tuple[tuple[str, ...], date], list[dict[str, str]]] = {}
        self._perk_list: tuple[tuple[str, ...], list[Campaign]] | None = None
        self._occurrence: (
            tuple[Campaign, datetime, Callable[[WelfareGroup], dict[str, Any] | None]] | None
        ) = None

    @property
    def neighbourhoods(self) -> MerchantNeighbourhoods:
        """Every group's merchants within the merchant radius, computed once for this version.

        Built on first use, so planners that never send merchant campaigns do not pay for it.
        With ``few_groups`` it holds no group: each lookup measures its group directly (the
        same answer, see :meth:`MerchantNeighbourhoods.near`).
        """
        if self._neighbourhoods is None:
            groups = () if self._few_groups else self.ops.groups.values()
            self._neighbourhoods = MerchantNeighbourhoods(
                groups, self.ops.merchants.values(), self._merchant_radius_m
            )
        return self._neighbourhoods

    def prepare(self) -> None:
        """Work out ahead what every occurrence of this version shares: each scheduled
        campaign's targets and send offsets, and the merchant neighbourhoods when a campaign
        lists merchants. A reload calls it in its worker thread, so the first fan-out of a
        version only looks them up."""
        lists_merchants = False
        for campaign in self.scheduled_campaigns():
            groups = self.targets(campaign)
            if groups:
                self.spread_offset(campaign, groups[0])
            lists_merchants = lists_merchants or merchant_categories(campaign) is not None
        if lists_merchants:
            self.neighbourhoods  # noqa: B018 - built on first use

    def scheduled_campaigns(self) -> list[Campaign]:
        """Enabled campaigns that fire on a schedule (every kind but welcome)."""
        return [
            c
            for c in sorted(self.ops.campaigns.values(), key=lambda c: c.id)
            if c.enabled and c.kind != "welcome"
        ]

    def targets(self, campaign: Campaign) -> list[WelfareGroup]:
        """Groups a campaign reaches (cached per planner, i.e. per ops-data version)."""
        if campaign.id not in self._targets:
            self._targets[campaign.id] = self.ops.target_groups(campaign)
        return self._targets[campaign.id]

    def spread_offset(self, campaign: Campaign, group: WelfareGroup) -> timedelta:
        """How long after the fire time ``group``'s send falls within the campaign's spread.

        The occurrence is spread over the accounts serving its groups: each account's groups
        are spaced evenly over the whole window, so every account sends at an even pace and
        they all finish together. A function of the group's place among its account's groups
        in the *whole* target list, so a group's send time is the same whether a caller plans
        every group or only some (``qunfu preview --group``).
        """
        positions = self._positions.get(campaign.id)
        if positions is None:
            per_account: dict[str, list[str]] = {}
            for g in self.targets(campaign):
                per_account.setdefault(self.accounts.for_group(g.id), []).append(g.id)
            positions = {
                gid: (j, len(ids)) for ids in per_account.values() for j, gid in enumerate(ids)
            }
            self._positions[campaign.id] = positions
        place = positions.get(group.id)
        if place is None:
            return timedelta(0)
        j, n = place
        return campaign.schedule.spread * j / n

    def merchant_radius_m(self, campaign: Campaign) -> float:
        """The radius within which a merchant campaign looks for merchants (``data.radius_m``)."""
        return float(campaign.data.get("radius_m", self._merchant_radius_m))

    def in_quiet_hours(self, campaign: Campaign, at: datetime) -> bool:
        """True when a marketing campaign would fire inside the quiet hours."""
        return campaign.marketing and self.quiet.contains(at.astimezone(SHANGHAI).time())

    def fire_times(self, campaign: Campaign, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every fire time in ``[start, end)``, quiet hours included (callers decide)."""
        return occurrences(campaign, self.calendar, start, end)

    def next_fire(
        self, campaign: Campaign, after: datetime, horizon: timedelta = timedelta(days=400)
    ) -> datetime | None:
        """The first fire time strictly after ``after``, within ``horizon``."""
        start = after + timedelta(microseconds=1)
        return next(iter(self.fire_times(campaign, start, start + horizon)), None)

    def context(
        self, campaign: Campaign, group: WelfareGroup, fire_at: datetime
    ) -> dict[str, Any] | None:
        """The template context for one group at one occurrence; None when there is nothing to say.

        A merchant campaign with no merchant open near the group that day sends nothing there.
        """
        return self._contexts(campaign, fire_at)(group)

    def _contexts(
        self, campaign: Campaign, fire_at: datetime
    ) -> Callable[[WelfareGroup], dict[str, Any] | None]:
        """:meth:`context` for each group of one occurrence: what the groups share (the merchant
        query, the campaign's identity) is worked out once, not 20,000 times."""
        cached = self._occurrence
        if cached is not None and cached[0] is campaign and cached[1] == fire_at:
            return cached[2]
        identity = campaign_context(campaign)
        day = fire_at.date()
        categories = merchant_categories(campaign)
        near = None
        if categories is not None:
            # A slice of the neighbourhoods computed once for this ops-data version.
            near = self.neighbourhoods.lookup(
                radius_m=self.merchant_radius_m(campaign),
                categories=categories or None,
                weekday=WEEKDAYS[fire_at.astimezone(SHANGHAI).weekday()],
                limit=int(campaign.data.get("limit", self._merchant_limit)),
            )

        # A lottery's draw time, from `data.draw_at` as its round is drawn (bot.lottery).
        lottery = lottery_context(campaign.data, fire_at) if campaign.kind == "lottery" else None

        def build(group: WelfareGroup) -> dict[str, Any] | None:
            merchants: list[dict[str, Any]] = []
            if near is not None:
                merchants = [
                    {
                        "id": m.id,
                        "name": m.name,
                        "offer": m.offer,
                        "category": m.category,
                        "address": m.address,
                        "distance_m": round(d),
                    }
                    for m, d in near(group)
                ]
                if not merchants:
                    return None
            ctx = {
                "group": group_context(group),
                "campaign": dict(identity),
                "data": campaign.data,
                "now": fire_at,
                "merchants": merchants,
                "members": [],
                "perks": self.perks(group, day),
            }
            if lottery is not None:
                ctx["lottery"] = lottery
            return ctx

        self._occurrence = (campaign, fire_at, build)
        return build

    def perks(self, group: WelfareGroup, day: date) -> list[dict[str, str]]:
        """The group's perk calendar on ``day`` in template form.

        Cached per day and per set of campaigns reaching the group: the groups of a fan-out
        mostly share a handful of calendars, so each is built once, not once per group.
        """
        if self._perks and next(iter(self._perks))[1] != day:
            self._perks.clear()  # one day's calendars at a time: the cache never grows old
        everyone, some = self._perk_campaigns()
        reaching = everyone + tuple(c.id for c in some if self.ops.targets(c, group))
        key = (reaching, day)
        if key not in self._perks:
            calendar = perk_calendar(self.ops, group, day, self.quiet)
            self._perks[key] = [p.as_context() for p in calendar]
        return self._perks[key]

    def _perk_campaigns(self) -> tuple[tuple[str, ...], list[Campaign]]:
        """The campaigns a perk calendar may list (see :func:`bot.perks.perk_calendar`): the
        ids of those reaching every group, and the others (asked group by group)."""
        if self._perk_list is None:
            listed = [c for c in self.ops.campaigns.values() if c.enabled and c.kind != "welcome"]
            everyone = tuple(c.id for c in listed if c.targets.is_everyone())
            self._perk_list = (everyone, [c for c in listed if not c.targets.is_everyone()])
        return self._perk_list

    def deliveries(
        self, campaign: Campaign, fire_at: datetime, groups: list[WelfareGroup] | None = None
    ) -> list[Delivery]:
        """Render one occurrence for every targeted group, spreading sends over the window."""
        return list(self.iter_deliveries(campaign, fire_at, groups))

    def iter_deliveries(
        self, campaign: Campaign, fire_at: datetime, groups: list[WelfareGroup] | None = None
    ) -> Iterator[Delivery]:
        """:meth:`deliveries` one group at a time, so a caller can pause between groups."""
        targeted = self.targets(campaign) if groups is None else groups
        contexts = self._contexts(campaign, fire_at)
        blank: list[str] = []
        for group in targeted:
            ctx = contexts(group)
            if ctx is None:
                logger.bind(campaign=campaign.id, group=group.id).debug(
                    "no merchants near; skipped"
                )
                continue
            try:
                text = self.renderer.render(campaign.template, ctx)
            except TemplateRenderError as exc:
                # This group's data breaks the template; the other groups still get theirs.
                logger.bind(campaign=campaign.id, group=group.id).error(
                    "template failed for this group; skipped: {}", exc
                )
                continue
            if not text:
                # A template whose {% if %} leaves this group out: an empty message is never
                # sent (render() strips, so whitespace-only output is empty here).
                blank.append(group.id)
                continue
            yield Delivery(
                fire_at,
                fire_at + self.spread_offset(campaign, group),
                group,
                campaign,
                text,
                self.accounts.for_group(group.id),
            )
        if blank:
            shown = ", ".join(blank[:3]) + (", …" if len(blank) > 3 else "")
            logger.bind(campaign=campaign.id, groups=len(blank)).warning(
                "template {} rendered nothing for {} group(s) ({}); skipped",
                campaign.template,
                len(blank),
                shown,
            )

    def plan(
        self, start: datetime, end: datetime, group_id: str | None = None
    ) -> Iterator[Delivery]:
        """Everything that would be sent in ``[start, end)``, in time order (preview)."""
        streams = []
        for campaign in self.scheduled_campaigns():
            groups = self.targets(campaign)
            if group_id is not None:
                groups = [g for g in groups if g.id == group_id]
            if not groups:
                continue
            streams.append(self._campaign_stream(campaign, groups, start, end))
        return merge(*streams, key=lambda d: (d.send_at, d.group.id, d.campaign.id))

    def _campaign_stream(
        self, campaign: Campaign, groups: list[WelfareGroup], start: datetime, end: datetime
    ) -> Iterator[Delivery]:
        for fire_at in self.fire_times(campaign, start, end):
            if self.in_quiet_hours(campaign, fire_at):
                continue
            yield from self.iter_deliveries(campaign, fire_at, groups)
