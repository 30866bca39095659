"""Properties of routing: the index and the merchant neighbourhoods are the brute force, exactly.

The brute force is the plainest possible answer: every point converted by ``prcoords`` one at a
time (:func:`to_wgs84`), measured with geopy's geodesic (geographiclib, in Python), filtered,
sorted by (distance, id), cut at the limit. The index and the neighbourhoods must return the
same members in the same order with the same distances. Distances from two implementations of
Karney's algorithm differ by nanometres, so "the same" allows 1e-9 relative: two points whose
distances are that close are a tie, and either may come first (exactly equal distances, as for
two groups at one spot, are ordered by id). Radii are drawn at least 1e-7 away from every
distance, so being inside or outside never hangs on that noise.

Also here: queries in every coordinate system with live member counts, and the overflow
placement (within the radius, else beyond it) that the entry page and the bot share.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import prcoords
import pytest
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.entry.overflow import Area, OverflowPlacement
from bot.opsdata.models import WEEKDAYS, Location, Merchant, WelfareGroup
from bot.routing import (
    GroupIndex,
    MerchantIndex,
    MerchantNeighbourhoods,
    _chord_for,
    _metres_beyond,
    _xyz,
    to_wgs84,
    to_wgs84_many,
)
from scheduler.clock import SHANGHAI

CRS = ["gcj02", "wgs84", "bd09"]
crs_st = st.sampled_from(CRS)

# Places: a dense city, the corners of the box inside which GCJ-02 shifts points (so some points
# of one set are shifted and others not), and the antimeridian (outside China, never shifted).
PLACES = {
    "shenzhen": (22.54, 114.0),
    "box-south-west": (0.8293, 72.004),
    "box-north-east": (55.8271, 137.8347),
    "box-east-edge": (30.0, 137.8347),
    "antimeridian": (52.0, 179.999),
}
SPREADS = [1e-5, 0.003, 0.05, 1.0]


def _tol(metres: float) -> float:
    """Two geodesic implementations agree to within this (nanometres; generous)."""
    return 1e-9 * metres + 1e-6


@st.composite
def scenes(draw, max_points: int = 60):
    """Points around one place, with exact duplicates now and then (ties in distance)."""
    lat0, lon0 = PLACES[draw(st.sampled_from(sorted(PLACES)))]
    spread = draw(st.sampled_from(SPREADS))
    offset = st.floats(-spread, spread, allow_nan=False)
    points: list[tuple[float, float, str]] = []
    for _ in range(draw(st.integers(1, max_points))):
        if points and draw(st.integers(0, 5)) == 0:
            points.append(draw(st.sampled_from(points)))  # the very same spot again
            continue
        lat = min(89.9, max(-89.9, lat0 + draw(offset)))
        lon = lon0 + draw(offset)
        lon = lon - 360 if lon > 180 else lon  # across the antimeridian
        points.append((lat, lon, draw(crs_st)))
    # Sometimes far from every point, where the k-nearest by chord and by geodesic part ways
    # most (all candidates at nearly one distance): the lower bound then has to be right.
    away = draw(st.sampled_from([0.0, 0.0, 0.3, 2.0]))
    query = (
        min(89.9, max(-89.9, lat0 + away + draw(offset))),
        (lambda x: x - 360 if x > 180 else x)(lon0 + draw(offset)),
    )
    return points, query


def _group(i: int, lat: float, lon: float, crs: str, members: int = 0) -> WelfareGroup:
    return WelfareGroup(
        id=f"g{i:03d}",
        name=f"群{i}",
        city="深圳",
        capacity=500,
        members=members,
        location=Location(lat=lat, lon=lon, crs=crs),
    )


def _exact(origin: tuple[float, float], loc: Location) -> float:
    return geodesic(origin, to_wgs84(loc.lat, loc.lon, loc.crs)).m


def _radius_at_an_edge(draw, distances: list[float]) -> float | None:
    """None, a plain radius, or one a hair inside or outside some point's distance."""
    kind = draw(st.sampled_from(["none", "plain", "edge"]))
    if kind == "none":
        return None
    if kind == "plain" or not distances:
        radius = draw(st.floats(0, 300_000))
    else:
        radius = draw(st.sampled_from(distances)) * (1 + draw(st.sampled_from([-1e-7, 1e-7])))
    assume(all(abs(d - radius) > 1e-8 * radius + 1e-6 for d in distances))
    return radius


def assert_same_ranking(
    got: list[tuple[str, float]], brute: list[tuple[float, str]], limit: int
) -> None:
    """``got`` (id, metres) is the first ``limit`` of ``brute`` (metres, id), ties aside."""
    brute = sorted(brute)
    expected = brute[:limit]
    assert len(got) == len(expected)
    assert [d for _, d in got] == sorted(d for _, d in got)
    for (_, d), (bd, _) in zip(got, expected, strict=True):
        assert d == pytest.approx(bd, rel=1e-9, abs=1e-6)
    # Runs of near-equal distances are ties: the same ids, in any order within the run; a run
    # cut by the limit contributes some of its ids.
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(brute) and brute[end][0] - brute[end - 1][0] <= _tol(brute[end][0]):
            end += 1
        run_ids = {gid for _, gid in brute[start:end]}
        got_ids = [gid for gid, _ in got[start : min(end, limit)]]
        assert set(got_ids) <= run_ids
        assert len(set(got_ids)) == len(got_ids)
        start = end
    # Exactly equal distances come in id order.
    for (a, da), (b, db) in zip(got, got[1:], strict=False):
        if da == db:
            assert a < b


# --- coordinate conversion ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.floats(-90, 90), st.floats(-180, 180), crs_st)
        | st.tuples(st.floats(0.5, 56.0), st.floats(71.5, 138.5), crs_st),
        min_size=1,
        max_size=40,
    )
)
def test_vectorised_conversion_is_prcoords_point_by_point(points) -> None:
    lat, lon = to_wgs84_many([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])
    for (la, lo, crs), vla, vlo in zip(points, lat.tolist(), lon.tolist(), strict=True):
        one = to_wgs84(la, lo, crs)
        assert abs(vla - one[0]) <= 1e-12 and abs(vlo - one[1]) <= 1e-12, (la, lo, crs)


def test_vectorised_conversion_matches_prcoords_at_the_sample_point() -> None:
    kjy = (22.5405, 113.9345)
    bd = prcoords.gcj_bd(kjy)
    lat, lon = to_wgs84_many(
        [kjy[0], bd.lat, kjy[0]], [kjy[1], bd.lon, kjy[1]], ["gcj02", "bd09", "wgs84"]
    )
    assert (lat[0], lon[0]) == pytest.approx(tuple(prcoords.gcj_wgs_bored(kjy)), abs=1e-12)
    wgs_of_bd = prcoords.gcj_wgs_bored(prcoords.bd_gcj_bored(bd))
    assert (lat[1], lon[1]) == pytest.approx(tuple(wgs_of_bd), abs=1e-12)
    assert (lat[2], lon[2]) == kjy


@pytest.mark.parametrize(
    ("lat", "lon", "crs", "reason"),
    [
        ([22.5, 91], [113.9, 113.9], "gcj02", "point 1: lat 91.0 is out of range"),
        ([22.5], [math.nan], "gcj02", "point 0: lon nan is out of range; expected a finite"),
        ([22.5, 22.6], [113.9, 114.0], ["gcj02", "utm"], "point 1: crs 'utm' is not known"),
        ([22.5, 22.6], [113.9], "gcj02", "one length"),
    ],
)
def test_vectorised_conversion_refuses_bad_points_saying_which(lat, lon, crs, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        to_wgs84_many(lat, lon, crs)


# --- the routing index ----------------------------------------------------------------------

anywhere = st.tuples(st.floats(-89.99, 89.99), st.floats(-180, 180))


@settings(max_examples=400, deadline=None)
@given(p=anywhere, q=anywhere | st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)))
def test_the_tree_chord_never_overstates_the_geodesic(p, q) -> None:
    """What makes the index exact: a point within s metres is within _chord_for(s) in the tree,
    and one ``c`` away in the tree is at least _metres_beyond(c) metres away."""
    if abs(q[0]) <= 0.05 and abs(q[1]) <= 0.05:  # a nearby point: short distances matter most
        q = (max(-89.99, min(89.99, p[0] + q[0])), ((p[1] + q[1] + 180) % 360) - 180)
    s = Geodesic.WGS84.Inverse(p[0], p[1], q[0], q[1])["s12"]
    chord = float(np.linalg.norm(_xyz(*p)[0] - _xyz(*q)[0]))
    assert chord <= _chord_for(s)
    assert _metres_beyond(chord) <= s


@settings(max_examples=250, deadline=None)
@given(data=st.data(), scene=scenes(), query_crs=crs_st, limit=st.integers(1, 8))
def test_nearest_is_the_brute_force_exactly(data, scene, query_crs, limit) -> None:
    points, query = scene
    full = data.draw(st.lists(st.booleans(), min_size=len(points), max_size=len(points)))
    groups = [
        _group(i, *p, members=500 if f else 0)
        for i, (p, f) in enumerate(zip(points, full, strict=True))
    ]
    live = data.draw(st.booleans())
    counts = {g.id: 500 if g.members == 0 else 0 for g in groups} if live else None
    origin = to_wgs84(*query, query_crs)
    exact = {g.id: _exact(origin, g.location) for g in groups}
    radius = _radius_at_an_edge(data.draw, list(exact.values()))

    results = GroupIndex(groups).nearest(
        *query, query_crs, limit=limit, radius_m=radius, member_counts=counts
    )

    def has_room(g: WelfareGroup) -> bool:
        return (counts[g.id] if counts else g.members) < g.capacity

    brute = [
        (exact[g.id], g.id)
        for g in groups
        if has_room(g) and (radius is None or exact[g.id] <= radius)
    ]
    assert_same_ranking([(r.group.id, r.distance_m) for r in results], brute, limit)
    for r in results:
        assert abs(r.distance_m - exact[r.group.id]) <= 0.005 * exact[r.group.id] + 1e-6
        assert r.members == (counts[r.group.id] if counts else r.group.members)


def test_equal_distances_are_ordered_by_id() -> None:
    spot = (22.5410, 113.9350)
    groups = [_group(i, *spot, "gcj02") for i in (7, 3, 5)]
    results = GroupIndex(groups).nearest(22.5405, 113.9345, limit=2)
    assert [r.group.id for r in results] == ["g003", "g005"]


def test_many_full_groups_nearby_do_not_hide_one_with_room_farther_away() -> None:
    crowd = [_group(i, 22.5405 + i * 1e-5, 113.9345, "gcj02", members=500) for i in range(200)]
    room = _group(999, 22.60, 114.00, "gcj02")
    results = GroupIndex([*crowd, room]).nearest(22.5405, 113.9345, limit=3)
    assert [r.group.id for r in results] == ["g999"]


# --- merchants ------------------------------------------------------------------------------

CATEGORIES = ["早餐", "午餐", "电影"]


@st.composite
def merchant_scenes(draw):
    points, _ = draw(scenes(max_points=40))
    n_groups = draw(st.integers(1, min(12, len(points))))
    groups = [_group(i, *p) for i, p in enumerate(points[:n_groups])]
    merchants = [
        Merchant(
            id=f"m{j:03d}",
            name=f"商户{j}",
            category=draw(st.sampled_from(CATEGORIES)),
            offer="满30减10",
            location=Location(lat=p[0], lon=p[1], crs=p[2]),
            days=draw(st.lists(st.sampled_from(WEEKDAYS), max_size=2)),
        )
        for j, p in enumerate(points[n_groups:] or points)
    ]
    return groups, merchants


@settings(max_examples=120, deadline=None)
@given(
    data=st.data(),
    scene=merchant_scenes(),
    base_radius=st.sampled_from([100.0, 1500.0, 20_000.0]),
    categories=st.none() | st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2),
    weekday=st.none() | st.sampled_from(WEEKDAYS),
    limit=st.integers(0, 6),
)
def test_neighbourhoods_are_the_brute_force_exactly(
    data, scene, base_radius, categories, weekday, limit
) -> None:
    groups, merchants = scene
    nb = MerchantNeighbourhoods(groups, merchants, base_radius)
    index = MerchantIndex(merchants)
    for g in groups:
        origin = to_wgs84(g.location.lat, g.location.lon, g.location.crs)
        exact = {m.id: _exact(origin, m.location) for m in merchants}
        # At, inside or beyond the precomputed radius, or at a merchant's edge.
        radius = data.draw(st.sampled_from([base_radius, base_radius / 3, base_radius * 4, -1.0]))
        if radius < 0:
            radius = _radius_at_an_edge(data.draw, list(exact.values())) or 0.0
        assume(all(abs(d - radius) > 1e-8 * radius + 1e-6 for d in exact.values()))
        brute = [
            (exact[m.id], m.id)
            for m in merchants
            if exact[m.id] <= radius
            and (categories is None or m.category in categories)
            and (weekday is None or not m.days or weekday in m.days)
        ]
        kw = {"categories": categories, "weekday": weekday, "limit": limit}
        found = nb.near(g, radius_m=radius, **kw)
        assert_same_ranking([(m.id, d) for m, d in found], brute, limit)
        loc = g.location
        direct = index.near(loc.lat, loc.lon, loc.crs, radius_m=radius, **kw)
        assert_same_ranking([(m.id, d) for m, d in direct], brute, limit)  # one point at a time


def test_a_campaign_radius_beyond_the_precomputed_one_is_computed_once() -> None:
    g = _group(0, 22.5405, 113.9345, "gcj02")
    far = Merchant(
        id="far", name="远", category="午餐", offer="x", location=Location(lat=22.5405, lon=113.96)
    )
    nb = MerchantNeighbourhoods([g], [far], 1500)
    assert nb.near(g) == []
    found = nb.near(g, radius_m=5000)
    assert [m.id for m, _ in found] == ["far"] and 2000 < found[0][1] < 3000
    assert nb.pairs(5000) is nb.pairs(5000)  # kept for this ops-data version


def test_a_wide_radius_with_categories_pairs_only_those_merchants() -> None:
    """A cinema campaign's 3 km at 20,000 groups paired every merchant within 3 km (about
    1.75 million lunch pairs, 1.7 s) to keep a few cinemas; now only the cinemas are paired."""
    groups = [_group(i, 22.54 + i * 1e-3, 114.0, "gcj02") for i in range(20)]
    lunch = [
        Merchant(
            id=f"l{j}", name="店", category="午餐", offer="x",
            location=Location(lat=22.54 + j * 1e-3, lon=114.001),
        )
        for j in range(40)
    ]  # fmt: skip
    cinema = Merchant(
        id="c", name="影院", category="电影", offer="x", location=Location(lat=22.55, lon=114.02)
    )
    nb = MerchantNeighbourhoods(groups, [*lunch, cinema], 100)
    found = nb.near(groups[0], radius_m=3000, categories=["电影"])
    assert [m.id for m, _ in found] == ["c"]
    assert 3000 not in nb._pairs  # no pairs of every merchant at 3 km
    (pairs,) = nb._by_category.values()
    assert set(pairs.merchant.tolist()) == {len(lunch)}  # the cinema's row, and only it
    # Without categories the wide radius still pairs every merchant.
    assert len(nb.near(groups[0], radius_m=3000)) == 5 and 3000 in nb._pairs


def test_neighbourhood_storage_is_compact_arrays() -> None:
    groups = [_group(i, 22.54 + i * 1e-3, 114.0, "gcj02") for i in range(50)]
    merchants = [
        Merchant(
            id=f"m{j}",
            name="店",
            category="午餐",
            offer="x",
            location=Location(lat=22.54 + j * 1e-3, lon=114.001),
        )
        for j in range(60)
    ]
    nb = MerchantNeighbourhoods(groups, merchants, 1500)
    pairs = nb.pairs(1500)
    assert pairs.merchant.size > 1000
    # An int32 merchant row and a float64 distance per pair, and one offset per group.
    assert pairs.nbytes == 12 * pairs.merchant.size + 8 * (len(groups) + 1)


# --- live counts and the overflow placement -------------------------------------------------

SZ = (22.54, 114.0)
lat_near = st.floats(SZ[0] - 0.3, SZ[0] + 0.3)
lon_near = st.floats(SZ[1] - 0.3, SZ[1] + 0.3)


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


def _exact_group(origin: tuple[float, float], g: WelfareGroup) -> float:
    return _exact(origin, g.location)


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
        assert abs(r.distance_m - _exact_group(origin, r.group)) <= 0.005 * max(r.distance_m, 1.0)
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
    exact = {g.id: _exact_group(origin, g) for g in groups}
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
