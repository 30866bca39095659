"""Placement with overflow: nearest groups with room, and an alert when an area has filled up.

When no group within the overflow radius can take a new member (all full, or none there), the
visitor is offered the nearest groups with room beyond the radius, and ops staff are told by
private message that the area needs a new group. The outbox key
``overflow:<area>:<date>:<contact>`` makes that once per area per day (Asia/Shanghai dates).

An area is the district the visitor picked or typed (from the gazetteer), otherwise a grid cell
of 0.02 degrees (about 2 km) around the point. Distances come from :mod:`bot.routing` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger

from bot.events import Say, contact_conv
from bot.opsdata.models import WelfareGroup
from bot.outbox import Outbox, OutboxItem
from bot.routing import GroupIndex, RouteResult
from bot.templating import distance as format_distance
from bot.templating import radius_text
from scheduler.clock import SHANGHAI, Clock

GRID_DEG = 0.02
_FULL_SCAN_LIMIT = 50


class Counts(Protocol):
    """Live member counts: :class:`bot.entry.seats.MemberCounts` (in memory) is the one used."""

    def member_counts(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class Area:
    """Where demand is counted: ``key`` is stable (for idempotency), ``label`` is for people."""

    key: str
    label: str


def district_area(city: str, district: str) -> Area:
    """The area of a gazetteer district."""
    return Area(f"district:{city}:{district}", f"{city}{district}")


def grid_area(lat_wgs84: float, lon_wgs84: float) -> Area:
    """The ~2 km grid cell holding a WGS-84 point."""
    i, j = math.floor(lat_wgs84 / GRID_DEG), math.floor(lon_wgs84 / GRID_DEG)
    lat_c, lon_c = (i + 0.5) * GRID_DEG, (j + 0.5) * GRID_DEG
    return Area(f"grid:{i}:{j}", f"坐标 {lat_c:.2f},{lon_c:.2f}（WGS-84）附近约2公里范围")


@dataclass(frozen=True)
class Placement:
    """Groups to offer, nearest first; ``overflow`` when none within the radius could take
    the person.

    ``nearby`` says what the radius holds for them: ``room`` (the offers), ``full`` (groups, all
    full: ``full_nearby`` of them) or ``none`` (no group at all). ``already`` lists the groups
    within the radius the person is in; they are never offered.
    """

    results: list[RouteResult]
    overflow: bool
    area: Area
    nearby: str = "room"
    full_nearby: int = 0
    already: list[RouteResult] = field(default_factory=list)


class OverflowPlacement:
    """Offers the nearest groups with room and raises the overflow alert to ops."""

    def __init__(
        self,
        index: Callable[[], GroupIndex],
        counts: Counts,
        outbox: Outbox,
        clock: Clock,
        *,
        radius_m: float,
        limit: int,
        ops_contacts: Sequence[str],
        account: str,
        beyond_m: float | None = None,
    ) -> None:
        self._index = index
        self._counts = counts
        # "Every group has room", for counting the full ones nearby: built again only when the
        # set of groups changes (the counts object is replaced then), not per request.
        self._none_full: tuple[Mapping[str, int] | None, dict[str, int]] = (None, {})
        self._outbox = outbox
        self._clock = clock
        self._radius_m = radius_m
        self._beyond_m = beyond_m
        self._limit = limit
        self._ops = tuple(ops_contacts)
        self._account = account

    @property
    def radius_m(self) -> float:
        return self._radius_m

    def place(
        self,
        lat: float,
        lon: float,
        crs: str,
        area: Area,
        *,
        limit: int | None = None,
        exclude: Collection[WelfareGroup] = (),
    ) -> Placement:
        """Nearest groups with room for a point; raises ``ValueError`` for an invalid point.

        ``exclude``: the groups the person is already in; never offered, listed in ``already``
        when within the radius.
        """
        limit = self._limit if limit is None else limit
        counts = self._counts.member_counts()  # in memory: never a read of every group's row
        index = self._index()
        mine = {g.id for g in exclude}
        offers, overflow = index.offer(
            lat,
            lon,
            crs,
            radius_m=self._radius_m,
            beyond_m=self._beyond_m,
            limit=limit,
            member_counts=counts,
            exclude=mine,
        )
        already = self._already(exclude, lat, lon, crs)
        if not overflow:
            return Placement(offers, False, area, "room", 0, already)
        beyond = offers
        every = self._every_has_room(counts)
        within = index.nearest(
            lat,
            lon,
            crs,
            limit=_FULL_SCAN_LIMIT + len(mine),
            member_counts=every,
            radius_m=self._radius_m,
        )
        full_nearby = sum(1 for r in within if r.group.id not in mine)
        # Nobody at all can join within the radius (not even into the person's own groups):
        # the area needs a new group.
        if not any(counts.get(r.group.id, r.group.members) < r.group.capacity for r in already):
            self._alert(area, len(within), beyond[0] if beyond else None)
        return Placement(
            beyond, True, area, "full" if full_nearby else "none", full_nearby, already
        )

    def _every_has_room(self, counts: Mapping[str, int]) -> dict[str, int]:
        if self._none_full[0] is not counts:
            self._none_full = (counts, dict.fromkeys(counts, 0))
        return self._none_full[1]

    def _already(
        self, groups: Collection[WelfareGroup], lat: float, lon: float, crs: str
    ) -> list[RouteResult]:
        if not groups:
            return []
        # A handful of groups: a throwaway index keeps distances in bot.routing.
        return GroupIndex(groups).nearest(
            lat,
            lon,
            crs,
            limit=len(groups),
            member_counts={g.id: 0 for g in groups},
            radius_m=self._radius_m,
        )

    def _alert(self, area: Area, full_nearby: int, offered: RouteResult | None) -> None:
        now = self._clock.now()
        day = now.astimezone(SHANGHAI).date().isoformat()
        text = overflow_text(area, self._radius_m, full_nearby, offered)
        log = logger.bind(area=area.key, full_nearby=full_nearby)
        if not self._ops:
            log.warning("overflow: area needs a new group, but entry.ops_contacts is empty")
            return
        added = self._outbox.enqueue(
            [
                OutboxItem(
                    key=f"overflow:{area.key}:{day}:{contact}",
                    action=Say(contact_conv(contact), text),
                    not_before=now,
                    marketing=False,
                    account=self._account,
                    reason="overflow",
                )
                for contact in self._ops
            ]
        )
        if added:
            log.info("overflow: told {} ops contacts that the area needs a new group", added)


def overflow_text(
    area: Area, radius_m: float, full_nearby: int, offered: RouteResult | None
) -> str:
    """The message ops staff get: which area, what is full, where people are sent meanwhile."""
    radius = radius_text(radius_m)
    if full_nearby:
        head = f"【新群需求】{area.label}：{radius}内的{full_nearby}个福利群已全部满员。"
    else:
        head = f"【新群需求】{area.label}：{radius}内还没有福利群，但有用户想入群。"
    if offered is None:
        tail = "附近也没有其他可加入的群，用户暂时无法入群。"
    else:
        distance = format_distance(offered.distance_m)
        tail = f"新用户暂被引导至「{offered.group.name}」（距离{distance}）。"
    return head + tail + "请尽快为该区域开设新群。（今日同一区域只提醒一次）"
