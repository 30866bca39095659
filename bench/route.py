"""Benchmark GroupIndex.nearest against a geodesic loop over every group.

    python bench/route.py [--groups N] [--queries Q] [--seed S]

Groups are scattered (seeded) around Chinese cities; queries are people a few kilometres from a
city centre, plus a few far from any city. Prints p50/p99 per nearest-5 query and the ratio to
a brute-force loop of ``geopy.distance.geodesic`` over all groups. Times only, no assertions.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geopy.distance import geodesic  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[20_000, 100_000],
                        help="one or more index sizes (default: 20000 100000)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--baseline-queries", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    for i, size in enumerate(args.groups):
        if i:
            print()
        run(size, args)


def run(size: int, args: argparse.Namespace) -> None:
    """Benchmark one index size and print its table."""
    rng = random.Random(args.seed)
    groups = make_groups(size, rng)
    queries = make_queries(args.queries, rng)

    t0 = time.perf_counter()
    index = GroupIndex(groups)
    build_s = time.perf_counter() - t0

    times, far = [], []
    for k, (lat, lon) in enumerate(queries):
        t = time.perf_counter()
        index.nearest(lat, lon, limit=5)
        (far if k % 50 == 49 else times).append((time.perf_counter() - t) * 1000)
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]

    converted = [(g, to_wgs84(g.location.lat, g.location.lon, g.location.crs)) for g in groups]
    base = []
    for lat, lon in queries[: args.baseline_queries]:
        t = time.perf_counter()
        expected = brute_force(converted, lat, lon)
        base.append((time.perf_counter() - t) * 1000)
        got = [r.group.id for r in index.nearest(lat, lon, limit=5)]
        if got != expected:
            print(f"warning: index {got} != brute force {expected} at {lat:.4f},{lon:.4f}")
    baseline = statistics.median(base)

    rows = [
        ("groups", f"{size}"),
        ("index build", f"{build_s:.2f} s"),
        ("queries near a city", f"{len(times)}"),
        ("ours p50", f"{p50:.3f} ms"),
        ("ours p99", f"{p99:.3f} ms"),
        ("ours max", f"{times[-1]:.3f} ms"),
        ("queries far from cities", f"{len(far)}"),
        ("far: median", f"{statistics.median(far):.3f} ms" if far else "-"),
        ("far: max", f"{max(far):.3f} ms" if far else "-"),
        (f"baseline median ({len(base)} q)", f"{baseline:.1f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>12}")
    print(f"ratio: baseline/ours = {baseline / p50:.0f}")


if __name__ == "__main__":
    main()
