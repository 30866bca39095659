"""Properties of routing as the entry path uses it (see test_routing.py for the index itself).

test_routing.py already checks GroupIndex.nearest against a brute-force geodesic top-k for GCJ-02
queries. Added here: queries in every coordinate system with live member counts, and the
overflow placement (within the radius, else beyond it) that the entry page and the bot share.
"""

from __future__ import annotations

from datetime import datetime

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.entry.overflow import Area, OverflowPlacement
from bot.opsdata.models import Location, WelfareGroup
from bot.routing import GroupIndex, to_wgs84
from scheduler.clock import SHANGHAI

SZ = (22.54, 114.0)
lat_near = st.floats(SZ[0] - 0.3, SZ[0] + 0.3)
lon_near = st.floats(SZ[1] - 0.3, SZ[1] + 0.3)
crs_st = st.sampled_from(["gcj02", "wgs84", "bd09"])


def _groups(points, capacities) -> list[WelfareGroup]:
    return [
        WelfareGroup(
            id=f"g{i}",
            name=f"群{i}",
            city="深圳",
            capacity=cap,
            location=Location(lat=lat, lon=lon, crs=crs),
        )
        for i, ((lat, lon, crs), cap) in enumerate(zip(points, capacities, strict=False))
    ]


group_sets = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.tuples(lat_near, lon_near, crs_st), min_size=n, max_size=n),
        st.lists(st.sampled_from([200, 500]), min_size=n, max_size=n),
        st.lists(st.integers(0, 500), min_size=n, max_size=n),
    )
)


class _Counts:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def member_counts(self) -> dict[str, int]:
        return self.counts


class _Outbox:
    def __init__(self) -> None:
        self.items: list = []

    def enqueue(self, items) -> int:
        new = [i for i in items if i.key not in {x.key for x in self.items}]
        self.items += new
        return len(new)


class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 12, 1, 10, tzinfo=SHANGHAI)


def _exact(origin: tuple[float, float], g: WelfareGroup) -> float:
    return geodesic(origin, to_wgs84(g.location.lat, g.location.lon, g.location.crs)).m


@settings(max_examples=120, deadline=None)
@given(data=group_sets, query=st.tuples(lat_near, lon_near), crs=crs_st, limit=st.integers(1, 6))
def test_live_counts_and_any_query_system_keep_the_invariants(data, query, crs, limit) -> None:
    points, capacities, members = data
    groups = _groups(points, capacities)
    counts = {g.id: m for g, m in zip(groups, members, strict=False)}
    results = GroupIndex(groups).nearest(*query, crs, limit=limit, member_counts=counts)
    origin = to_wgs84(*query, crs)
    distances = [r.distance_m for r in results]
    assert distances == sorted(distances)
    assert all(
        counts[r.group.id] < r.group.capacity and r.members == counts[r.group.id] for r in results
    )
    for r in results:
        assert abs(r.distance_m - _exact(origin, r.group)) <= 0.005 * max(r.distance_m, 1.0)
    with_room = sum(1 for g in groups if counts[g.id] < g.capacity)
    assert len(results) == min(limit, with_room)


@settings(max_examples=120, deadline=None)
@given(
    data=group_sets,
    query=st.tuples(lat_near, lon_near),
    crs=crs_st,
    radius_m=st.floats(200, 20_000),
)
def test_overflow_placement_offers_room_within_the_radius_else_beyond(
    data, query, crs, radius_m
) -> None:
    points, capacities, members = data
    groups = _groups(points, capacities)
    counts = {g.id: m for g, m in zip(groups, members, strict=False)}
    outbox = _Outbox()
    index = GroupIndex(groups)
    placement = OverflowPlacement(
        lambda: index,
        _Counts(counts),
        outbox,
        _Clock(),  # type: ignore[arg-type]
        radius_m=radius_m,
        limit=5,
        ops_contacts=["ops"],
        account="bot",
    )
    placed = placement.place(*query, crs, Area("grid:test", "测试区域"))

    origin = to_wgs84(*query, crs)
    exact = {g.id: _exact(origin, g) for g in groups}
    room = [g for g in groups if counts[g.id] < g.capacity]
    room_within = [g for g in room if exact[g.id] <= radius_m * (1 - 1e-9)]
    distances = [r.distance_m for r in placed.results]
    assert distances == sorted(distances)
    assert all(counts[r.group.id] < r.group.capacity for r in placed.results)
    for r in placed.results:
        assert abs(r.distance_m - exact[r.group.id]) <= 0.005 * max(r.distance_m, 1.0)
    if room_within:
        assert not placed.overflow and all(d <= radius_m for d in distances)
        assert outbox.items == []
    else:
        assert placed.overflow and len(placed.results) == min(5, len(room))
        assert len(outbox.items) == 1  # one alert; asking again the same day adds nothing
        placement.place(*query, crs, Area("grid:test", "测试区域"))
        assert len(outbox.items) == 1
