"""Benchmark GroupIndex.nearest against plain scipy cKDTree + exact re-rank, and a geopy loop.

    python bench/route.py [--groups 20000 100000] [--queries Q] [--runs R] [--seed S]

Groups are scattered (seeded) around Chinese cities, a sixth of them full; queries are people a
few kilometres from a city centre, plus a few far from any city. For each size, ``--runs``
runs; each times nearest-5 with room over the same queries three ways:

* ours: ``GroupIndex.nearest`` (live member counts honoured per query, exact answer);
* the fair baseline, written plainly here: a cKDTree of unit vectors over the groups that have
  room (built beforehand, outside the timing), the 16 nearest by chord, PROJ's geodesic on
  them, sorted, the first 5;
* a loop of ``geopy.distance.geodesic`` over every group (a few queries only).

Figures are medians over the runs of each run's p50; the ratio (ours p50 / baseline p50, goal
<= 1.2) is printed last. Answers are checked against both baselines. Times only, no assertions.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from geopy.distance import geodesic  # noqa: E402
from pyproj import Geod  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from bot.opsdata.models import Location, WelfareGroup  # noqa: E402
from bot.routing import GroupIndex, to_wgs84  # noqa: E402

CITIES = {  # GCJ-02 centres, lat/lon
    "深圳": (22.543, 114.058),
    "广州": (23.129, 113.264),
    "上海": (31.230, 121.474),
    "北京": (39.904, 116.407),
    "成都": (30.573, 104.066),
    "杭州": (30.274, 120.155),
    "武汉": (30.593, 114.305),
    "西安": (34.341, 108.940),
    "南京": (32.060, 118.797),
    "重庆": (29.563, 106.551),
    "天津": (39.343, 117.361),
    "苏州": (31.299, 120.585),
    "长沙": (28.228, 112.939),
    "郑州": (34.747, 113.625),
    "厦门": (24.480, 118.089),
    "昆明": (25.038, 102.718),
    "哈尔滨": (45.803, 126.535),
    "乌鲁木齐": (43.826, 87.617),
}


def make_groups(n: int, rng: random.Random) -> list[WelfareGroup]:
    names = list(CITIES)
    groups = []
    for i in range(n):
        city = rng.choice(names)
        lat, lon = CITIES[city]
        groups.append(
            WelfareGroup(
                id=f"g{i:06d}",
                name=f"{city}福利{i}群",
                city=city,
                location=Location(lat=lat + rng.gauss(0, 0.12), lon=lon + rng.gauss(0, 0.12)),
                members=rng.choice([0, 50, 120, 260, 499, 500]),
            )
        )
    return groups


def make_queries(q: int, rng: random.Random) -> list[tuple[float, float]]:
    points = []
    for k in range(q):
        if k % 50 == 49:  # somewhere in China, possibly hundreds of km from any group
            points.append((rng.uniform(22, 45), rng.uniform(88, 125)))
        else:
            lat, lon = CITIES[rng.choice(list(CITIES))]
            points.append((lat + rng.gauss(0, 0.08), lon + rng.gauss(0, 0.08)))
    return points


def brute_force(
    groups: list[tuple[WelfareGroup, tuple[float, float]]], lat: float, lon: float, k: int = 5
) -> list[str]:
    """Geodesic to every group with room (locations already in WGS-84), keep the k nearest."""
    origin = to_wgs84(lat, lon, "gcj02")
    scored = [(geodesic(origin, wgs).m, g.id) for g, wgs in groups if g.members < g.capacity]
    return [gid for _, gid in sorted(scored)[:k]]


class PlainKDTree:
    """The fair baseline: cKDTree of unit vectors + exact re-rank, nothing else."""

    def __init__(self, groups: list[WelfareGroup]) -> None:
        self.groups = [g for g in groups if g.members < g.capacity]
        wgs = [to_wgs84(g.location.lat, g.location.lon, g.location.crs) for g in self.groups]
        self.lat = np.array([p[0] for p in wgs])
        self.lon = np.array([p[1] for p in wgs])
        self.tree = cKDTree(unit(self.lat, self.lon))
        self.geod = Geod(ellps="WGS84")

    def nearest(self, lat: float, lon: float, k: int = 5) -> list[str]:
        wlat, wlon = to_wgs84(lat, lon, "gcj02")
        phi, lam = math.radians(wlat), math.radians(wlon)
        xyz = [math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)]
        _, idx = self.tree.query(xyz, k=16)
        _, _, dist = self.geod.inv(
            np.full(idx.size, wlon), np.full(idx.size, wlat), self.lon[idx], self.lat[idx]
        )
        return [self.groups[i].id for i in idx[np.argsort(dist, kind="stable")[:k]]]


def unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def timed(fn: Callable[[float, float], object], queries: list[tuple[float, float]]) -> list[float]:
    """Milliseconds per call, one per query."""
    out = []
    for lat, lon in queries:
        t = time.perf_counter()
        fn(lat, lon)
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[20_000, 100_000],
                        help="one or more index sizes (default: 20000 100000)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--baseline-queries", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    ratios = [run(size, args) for size in args.groups]
    print()
    for size, ratio in zip(args.groups, ratios, strict=True):
        print(f"{size} groups: ours p50 / plain cKDTree + re-rank p50 = {ratio:.2f}x "
              f"(goal <= 1.2x, median of {args.runs} runs)")


def run(size: int, args: argparse.Namespace) -> float:
    """Benchmark one index size, print its table and return the ratio to the fair baseline."""
    rng = random.Random(args.seed)
    groups = make_groups(size, rng)
    queries = make_queries(args.queries, rng)
    near = [q for k, q in enumerate(queries) if k % 50 != 49]
    far = [q for k, q in enumerate(queries) if k % 50 == 49]

    builds, ours_p50, ours_p99, far_p50, plain_p50, ratios = [], [], [], [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        index = GroupIndex(groups)
        builds.append(time.perf_counter() - t0)
        plain = PlainKDTree(groups)
        ours_fn = functools.partial(index.nearest, limit=5)
        # Query by query, alternately, so load from elsewhere on the machine hits both alike;
        # who goes first alternates too, as the first to visit a place finds the caches cold.
        ours_t: list[float] = []
        plain_t: list[float] = []
        for k, q in enumerate(near):
            if k % 2:
                plain_t += timed(plain.nearest, [q])
                ours_t += timed(ours_fn, [q])
            else:
                ours_t += timed(ours_fn, [q])
                plain_t += timed(plain.nearest, [q])
        ours_p50.append(statistics.median(ours_t))
        ours_p99.append(p(ours_t, 0.99))
        plain_p50.append(statistics.median(plain_t))
        ratios.append(ours_p50[-1] / plain_p50[-1])
        far_p50.append(statistics.median(timed(ours_fn, far)))

    mismatches = sum(
        [r.group.id for r in index.nearest(lat, lon, limit=5)] != plain.nearest(lat, lon)
        for lat, lon in near
    )
    converted = [(g, to_wgs84(g.location.lat, g.location.lon, g.location.crs)) for g in groups]
    base = []
    for lat, lon in queries[: args.baseline_queries]:
        t = time.perf_counter()
        expected = brute_force(converted, lat, lon)
        base.append((time.perf_counter() - t) * 1000)
        got = [r.group.id for r in index.nearest(lat, lon, limit=5)]
        if got != expected:
            print(f"warning: index {got} != geopy brute force {expected} at {lat:.4f},{lon:.4f}")

    med = statistics.median
    rows = [
        ("groups", f"{size}"),
        ("runs (medians below)", f"{args.runs}"),
        ("index build", f"{med(builds):.3f} s"),
        ("queries near a city", f"{len(near)}"),
        ("ours p50", f"{med(ours_p50):.3f} ms"),
        ("ours p99", f"{med(ours_p99):.3f} ms"),
        ("far from cities: ours p50", f"{med(far_p50):.3f} ms" if far else "-"),
        ("plain cKDTree + re-rank p50", f"{med(plain_p50):.3f} ms"),
        ("answers differing from plain", f"{mismatches}"),
        (f"geopy loop median ({len(base)} q)", f"{med(base):.1f} ms"),
        ("geopy loop / ours p50", f"{med(base) / med(ours_p50):,.0f}x"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>12}")
    return float(med(ratios))


if __name__ == "__main__":
    main()
