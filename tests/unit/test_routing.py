"""Routing: coordinate conversion, nearest groups with room, merchants near a group."""

from __future__ import annotations

import math
from pathlib import Path

import prcoords
import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.opsdata.models import GroupsFile, Location, Merchant, MerchantsFile, WelfareGroup
from bot.opsdata.problems import read_yaml
from bot.routing import GroupIndex, MerchantIndex, merchants_near, to_wgs84

KJY = (22.5405, 113.9345)  # 深圳南山科技园, GCJ-02


def group(
    gid: str, lat: float, lon: float, *, members: int = 0, crs: str = "gcj02", capacity: int = 500
) -> WelfareGroup:
    return WelfareGroup(
        id=gid,
        name=f"{gid}福利群",
        city="深圳",
        capacity=capacity,
        location=Location(lat=lat, lon=lon, crs=crs),
        members=members,
    )


def merchant(
    mid: str, lat: float, lon: float, category: str = "午餐", days: list[str] | None = None
) -> Merchant:
    return Merchant(
        id=mid,
        name=mid,
        category=category,
        offer="刷信用卡满30减10",
        location=Location(lat=lat, lon=lon),
        days=days or [],
    )


# --- conversion -----------------------------------------------------------------------------


def test_gcj02_is_hundreds_of_metres_from_wgs84_in_shenzhen():
    wgs = to_wgs84(*KJY, "gcj02")
    offset = geodesic(KJY, wgs).m
    assert 300 < offset < 900


def test_wgs84_is_returned_unchanged():
    assert to_wgs84(*KJY, "wgs84") == KJY


def test_bd09_round_trip_lands_on_the_same_wgs84_point():
    bd = prcoords.gcj_bd(KJY)
    assert geodesic(to_wgs84(bd.lat, bd.lon, "bd09"), to_wgs84(*KJY, "gcj02")).m < 0.5


def test_points_outside_china_are_not_shifted():
    assert to_wgs84(48.8566, 2.3522, "gcj02") == (48.8566, 2.3522)


@pytest.mark.parametrize(
    ("lat", "lon", "crs", "reason"),
    [
        (91, 113.9, "gcj02", "lat 91.0 is out of range"),
        (22.5, 181, "gcj02", "lon 181.0 is out of range"),
        (math.nan, 113.9, "gcj02", "lat must be a finite number"),
        (22.5, math.inf, "gcj02", "lon must be a finite number"),
        ("22.5", 113.9, "gcj02", "lat must be a number of degrees"),
        (True, 113.9, "gcj02", "lat must be a number of degrees"),
        (22.5, 113.9, "mercator", "crs 'mercator' is not known"),
    ],
)
def test_invalid_points_are_refused_with_a_reason(lat, lon, crs, reason):
    with pytest.raises(ValueError, match=reason):
        to_wgs84(lat, lon, crs)


def test_nearest_refuses_invalid_points_too():
    with pytest.raises(ValueError, match="lat 91.0 is out of range"):
        GroupIndex([group("a", *KJY)]).nearest(91, 113.9)


# --- nearest groups -------------------------------------------------------------------------


def test_nearest_groups_come_nearest_first_with_geodesic_distances():
    index = GroupIndex(
        [group("far", 22.56, 113.96), group("near", 22.5410, 113.9350), group("mid", 22.55, 113.94)]
    )
    results = index.nearest(*KJY)
    assert [r.group.id for r in results] == ["near", "mid", "far"]
    wgs = geodesic(to_wgs84(*KJY), to_wgs84(22.5410, 113.9350)).m
    assert results[0].distance_m == pytest.approx(wgs, rel=1e-9)


def test_a_full_group_is_never_offered():
    index = GroupIndex([group("full", *KJY, members=500), group("room", 22.55, 113.94)])
    assert [r.group.id for r in index.nearest(*KJY)] == ["room"]


def test_live_member_counts_override_the_directory():
    index = GroupIndex([group("a", *KJY, members=10), group("b", 22.55, 113.94, members=500)])
    results = index.nearest(*KJY, member_counts={"a": 500, "b": 42})
    assert [(r.group.id, r.members) for r in results] == [("b", 42)]


def test_groups_beyond_the_radius_are_left_out():
    index = GroupIndex([group("near", 22.5410, 113.9350), group("guangzhou", 23.1197, 113.3245)])
    assert [r.group.id for r in index.nearest(*KJY, radius_m=5_000)] == ["near"]
    assert index.nearest(*KJY, radius_m=0) == []


def test_limit_caps_the_results():
    index = GroupIndex([group(f"g{i}", 22.54 + i / 1000, 113.93) for i in range(10)])
    assert len(index.nearest(*KJY, limit=3)) == 3
    assert index.nearest(*KJY, limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        index.nearest(*KJY, limit=-1)


def test_query_and_groups_in_different_systems_meet_in_wgs84():
    bd = prcoords.gcj_bd(KJY)
    index = GroupIndex([group("kjy", bd.lat, bd.lon, crs="bd09")])
    assert index.nearest(*KJY, "gcj02")[0].distance_m < 0.5


# --- merchants ------------------------------------------------------------------------------


def test_merchants_near_filters_by_radius_category_and_weekday():
    kjy = group("kjy", *KJY)
    merchants = [
        merchant("lunch-near", 22.5410, 113.9350),
        merchant("lunch-wed-only", 22.5420, 113.9350, days=["wed"]),
        merchant("dinner", 22.5415, 113.9350, category="晚餐"),
        merchant("lunch-far", 22.60, 114.00),
    ]
    index = MerchantIndex(merchants)
    found = merchants_near(kjy, index, radius_m=1500, categories=["午餐"], weekday="mon")
    assert [m.id for m, _ in found] == ["lunch-near"]
    found = merchants_near(kjy, merchants, radius_m=1500, categories={"午餐"}, weekday="wed")
    assert [m.id for m, _ in found] == ["lunch-near", "lunch-wed-only"]
    assert [m.id for m, _ in merchants_near(kjy, index, radius_m=1500, limit=1)] == ["lunch-near"]


def test_unknown_weekday_is_refused():
    with pytest.raises(ValueError, match="weekday"):
        MerchantIndex([]).near(*KJY, radius_m=1000, weekday="monday")


def test_every_sample_group_has_meal_and_cinema_merchants_within_1500_m():
    campaigns = Path(__file__).resolve().parents[2] / "campaigns"
    groups = GroupsFile.model_validate(read_yaml(campaigns / "groups.yaml").data)
    merchants = MerchantsFile.model_validate(read_yaml(campaigns / "merchants.yaml").data)
    index = MerchantIndex(merchants.merchants)
    for g in groups.groups:
        for category, wanted in (("早餐", 2), ("午餐", 2), ("晚餐", 2), ("电影", 1)):
            found = merchants_near(g, index, radius_m=1500, categories=[category], limit=wanted)
            assert len(found) == wanted, (g.id, category)


# --- properties -----------------------------------------------------------------------------

china_lat = st.floats(min_value=18.0, max_value=45.0)
china_lon = st.floats(min_value=98.0, max_value=125.0)


@st.composite
def clustered_points(draw):
    """Points around a few centres in China, so dense and sparse areas both occur."""
    centres = draw(st.lists(st.tuples(china_lat, china_lon), min_size=1, max_size=4))
    spread = draw(st.sampled_from([0.005, 0.05, 0.5, 3.0]))
    offsets = st.tuples(st.floats(-spread, spread), st.floats(-spread, spread))
    return [
        (c[0] + d[0], c[1] + d[1])
        for c, d in zip(
            draw(st.lists(st.sampled_from(centres), min_size=1, max_size=80)),
            draw(st.lists(offsets, min_size=80, max_size=80)),
            strict=False,
        )
    ]


@settings(max_examples=150, deadline=None)
@given(
    points=clustered_points(),
    fullness=st.lists(st.booleans(), min_size=80, max_size=80),
    crs=st.sampled_from(["gcj02", "wgs84", "bd09"]),
    query=st.tuples(china_lat, china_lon),
    limit=st.integers(1, 8),
    radius_m=st.one_of(st.none(), st.floats(100, 500_000)),
)
def test_nearest_is_the_brute_force_geodesic_top_k(points, fullness, crs, query, limit, radius_m):
    groups = [
        group(f"g{i}", lat, lon, crs=crs, members=500 if full else 499)
        for i, ((lat, lon), full) in enumerate(zip(points, fullness, strict=False))
    ]
    results = GroupIndex(groups).nearest(*query, limit=limit, radius_m=radius_m)

    origin = to_wgs84(*query, "gcj02")
    exact = {
        g.id: geodesic(origin, to_wgs84(g.location.lat, g.location.lon, crs)).m for g in groups
    }
    brute = sorted(
        (exact[g.id], g.id)
        for g in groups
        if g.members < g.capacity and (radius_m is None or exact[g.id] <= radius_m)
    )
    distances = [r.distance_m for r in results]

    assert distances == sorted(distances)
    assert all(r.members < r.group.capacity for r in results)
    for r in results:
        assert r.distance_m == pytest.approx(exact[r.group.id], rel=0.005)
    assert len(results) == min(limit, len(brute))
    assert distances == pytest.approx([d for d, _ in brute[:limit]], rel=1e-9, abs=1e-6)
    kth = brute[limit - 1][0] if len(brute) >= limit else math.inf
    surely_in = {gid for d, gid in brute if d < kth - 1e-6}  # ties at the k-th place aside
    assert surely_in <= {r.group.id for r in results}
