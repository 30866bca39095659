"""The waitlist: people told "we will message you" when no group near them could take them.

Only someone the bot can message privately is put on it (a location shared in a private chat);
the anonymous entry page never promises a message (docs/entry.md). When a group with room opens
within the radius of a waiting person — a new group in the directory, a group given more room,
or a member leaving a full group — each such person gets one private message through the outbox
(key ``waitlist:<row>:<waiting since>``, so a retry or a restart never sends it twice) and is
marked notified.

Cost: rows are filed under the ~2 km grid cell of their point; a group that opens looks only at
the cells its radius touches (an indexed ``IN``), and only when it crosses from full to room.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from loguru import logger

from bot.entry.overflow import GRID_DEG, grid_area
from bot.events import Say, contact_conv
from bot.opsdata.models import WelfareGroup
from bot.outbox import Outbox, OutboxItem
from bot.privacy import mask
from bot.routing import GroupIndex, to_wgs84
from bot.templating import distance
from db.entry_repositories import WaitlistRepo

# Metres per degree of latitude never fall below this (at the equator), so cells from it cover
# the radius with room to spare.
_M_PER_DEG_LAT = 110_574.0


def cells_within(lat_wgs84: float, lon_wgs84: float, radius_m: float) -> list[str]:
    """The grid-area keys of every cell a circle of ``radius_m`` around the point touches."""
    dlat = radius_m / _M_PER_DEG_LAT
    cos_lat = max(math.cos(math.radians(min(abs(lat_wgs84) + dlat, 89.0))), 1e-6)
    dlon = radius_m / (_M_PER_DEG_LAT * cos_lat)
    i0, i1 = math.floor((lat_wgs84 - dlat) / GRID_DEG), math.floor((lat_wgs84 + dlat) / GRID_DEG)
    j0, j1 = math.floor((lon_wgs84 - dlon) / GRID_DEG), math.floor((lon_wgs84 + dlon) / GRID_DEG)
    return [f"grid:{i}:{j}" for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]


def opened_text(group: WelfareGroup, distance_m: float) -> str:
    """The private message a waiting person gets."""
    return (
        f"好消息！您附近有福利群可以加入了：「{group.name}」（距您登记的位置约"
        f"{distance(distance_m)}）。请发送您的位置，我为您推荐附近有空位的群并发送入群邀请。"
    )


class Waitlist:
    """Records waiting people and tells them, once, when a group with room opens near them."""

    def __init__(
        self, repo: WaitlistRepo, outbox: Outbox, *, radius_m: float, account: str
    ) -> None:
        self._repo = repo
        self._outbox = outbox
        self._radius_m = radius_m
        self._account = account

    @property
    def radius_m(self) -> float:
        return self._radius_m

    def has_waiting(self) -> bool:
        """Whether anyone is waiting at all (one indexed row read)."""
        return self._repo.any_waiting()

    def wait(self, contact: str, lat: float, lon: float, crs: str, at: datetime) -> bool:
        """Put ``contact`` on the list for the point's area; True when newly waiting."""
        wlat, wlon = to_wgs84(lat, lon, crs)
        added = self._repo.wait(contact, grid_area(wlat, wlon).key, wlat, wlon, self._radius_m, at)
        if added:
            logger.bind(contact=mask(contact)).info("waitlist: waiting for a group with room")
        return added

    def opened(
        self, groups: Iterable[WelfareGroup], members: Mapping[str, int], at: datetime
    ) -> int:
        """Groups that now have room (``members``: live counts); tells each waiting person near
        one of them, once. Returns how many people were told."""
        with_room = [g for g in groups if members.get(g.id, g.members) < g.capacity]
        if not with_room or not self._repo.any_waiting():
            return 0
        cells: set[str] = set()
        for g in with_room:
            wlat, wlon = to_wgs84(g.location.lat, g.location.lon, g.location.crs)
            cells.update(cells_within(wlat, wlon, self._radius_m))
        waiting = self._repo.waiting_in(cells)
        if not waiting:
            return 0
        index = GroupIndex(with_room)
        told: set[str] = set()
        marked: dict[str, list[int]] = {}
        for w in waiting:
            near = index.nearest(
                w.lat, w.lon, "wgs84", limit=1, radius_m=w.radius_m, member_counts=members
            )
            if not near:
                continue
            group, metres = near[0].group, near[0].distance_m
            if w.contact not in told:  # one message per person, however many rows match
                told.add(w.contact)
                self._outbox.enqueue(
                    [
                        OutboxItem(
                            key=f"waitlist:{w.id}:{w.waiting_since.isoformat()}",
                            action=Say(contact_conv(w.contact), opened_text(group, metres)),
                            not_before=at,
                            marketing=False,
                            account=self._account,
                            reason="waitlist",
                        )
                    ]
                )
            marked.setdefault(group.id, []).append(w.id)
        # Marked after the enqueue: a crash in between re-enqueues the same key later (a no-op
        # in the outbox) and marks then, so nobody is told twice.
        for group_id, ids in marked.items():
            self._repo.notified(ids, group_id, at)
        if told:
            logger.bind(groups=len(with_room), told=len(told)).info(
                "waitlist: told waiting people that a group with room opened"
            )
        return len(told)
