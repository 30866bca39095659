"""Distances between people, welfare groups and merchants: the one home for geometry in Qunfu.

Points arrive in the coordinate system they were taken in (WeChat shares GCJ-02, Baidu maps use
BD-09, GPS uses WGS-84). Everything is converted to WGS-84 once per ops-data version, with
numpy over whole arrays (:func:`to_wgs84_many`, the formulas of ``prcoords``), then:

* points become 3-D vectors in scipy's ``cKDTree``: their Earth-centred (ECEF) position on the
  WGS-84 ellipsoid divided by the equatorial radius, so unit vectors at the equator and a hair
  shorter towards the poles. A straight chord is never longer than a path on the surface, so
  ``a * chord`` bounds the geodesic from below, tightly (0.03 % at 500 km, where a sphere of
  the least radius of curvature is 0.7 % off): a ball or k-nearest query on the tree never misses
  a true neighbour, and rarely has to look twice (see :func:`_chord_for`);
* the few candidates are measured with PROJ's WGS-84 geodesic (``pyproj.Geod.inv``, Karney's
  algorithm in C, vectorised), so distances, and the order built from them, are exact rather
  than approximations. Ties in distance are broken by id.

:class:`MerchantNeighbourhoods` computes, once per ops-data version and in one batch, every
group's merchants within the configured radius; a campaign occurrence only looks them up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Generic, TypeVar

import numpy as np
import prcoords
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod
from scipy.spatial import cKDTree

from bot.opsdata.models import WEEKDAYS, Location, Merchant, WelfareGroup

__all__ = [
    "GroupIndex",
    "MerchantIndex",
    "MerchantNeighbourhoods",
    "RouteResult",
    "merchants_near",
    "to_wgs84",
    "to_wgs84_many",
]

CRS_NAMES = ("gcj02", "bd09", "wgs84")

_GEOD = Geod(ellps="WGS84")
_WGS84_A = 6_378_137.0
_WGS84_F = 1 / 298.257223563
_WGS84_E2 = _WGS84_F * (2 - _WGS84_F)
# Relative slack on every bound, far above float rounding of coordinates and PROJ's geodesic
# (nanometres) and far below anything that matters (a micrometre per kilometre).
_SLACK = 1e-9

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


# --- coordinate conversion ------------------------------------------------------------------


def to_wgs84(lat: float, lon: float, crs: str = "gcj02") -> tuple[float, float]:
    """Convert a point to WGS-84 ``(lat, lon)`` degrees.

    ``crs`` is ``gcj02`` (WeChat, Amap, Tencent maps), ``bd09`` (Baidu maps) or ``wgs84`` (GPS).
    GCJ-02 only shifts points inside China; elsewhere the point is returned as it is.
    Raises ``ValueError`` saying what was wrong when a coordinate is not a finite number in range
    or the coordinate system is unknown.
    """
    lat_f = _checked("lat", lat, 90.0)
    lon_f = _checked("lon", lon, 180.0)
    if crs == "wgs84":
        return lat_f, lon_f
    if crs == "bd09":
        lat_f, lon_f = prcoords.bd_gcj_bored((lat_f, lon_f))
    elif crs != "gcj02":
        raise ValueError(f"crs {crs!r} is not known; expected one of {', '.join(CRS_NAMES)}")
    if not prcoords.sanity_in_china_p(prcoords.Coords(lat_f, lon_f)):
        return lat_f, lon_f
    wgs = prcoords.gcj_wgs_bored((lat_f, lon_f))
    return wgs.lat, wgs.lon


def _checked(name: str, value: object, limit: float) -> float:
    if type(value) is float and -limit <= value <= limit:  # the usual case, checked cheaply
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number of degrees, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    if not -limit <= v <= limit:
        raise ValueError(f"{name} {v} is out of range; expected {-limit:g} to {limit:g} degrees")
    return v


def to_wgs84_many(
    lat: ArrayLike, lon: ArrayLike, crs: ArrayLike | str = "gcj02"
) -> tuple[F64, F64]:
    """:func:`to_wgs84` over whole arrays at once: the same formulas (``prcoords``), in numpy.

    ``crs`` is one name for every point or one name per point. Raises ``ValueError`` naming the
    first bad point (its position in the arrays) when a coordinate is not finite or in range, or
    a coordinate system is unknown.
    """
    la = np.array(lat, dtype=np.float64, ndmin=1)
    lo = np.array(lon, dtype=np.float64, ndmin=1)
    if la.shape != lo.shape or la.ndim != 1:
        raise ValueError(f"lat and lon must be flat arrays of one length: {la.shape}, {lo.shape}")
    for name, values, limit in (("lat", la, 90.0), ("lon", lo, 180.0)):
        bad = ~(np.abs(values) <= limit)  # NaN compares false, so it is caught here too
        if bad.any():
            i = int(np.argmax(bad))
            what = "a finite number" if not np.isfinite(values[i]) else f"{-limit:g} to {limit:g}"
            raise ValueError(f"point {i}: {name} {values[i]} is out of range; expected {what}")
    names = np.broadcast_to(np.asarray(crs, dtype=object), la.shape)
    unknown = ~np.isin(names, CRS_NAMES)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise ValueError(
            f"point {i}: crs {names[i]!r} is not known; expected one of {', '.join(CRS_NAMES)}"
        )
    la, lo = la.copy(), lo.copy()
    bd = names == "bd09"
    if bd.any():
        la[bd], lo[bd] = _bored(_gcj_to_bd, _bd_to_gcj_rough, la[bd], lo[bd])
    shift = (names != "wgs84") & _in_china(la, lo)
    if shift.any():
        la[shift], lo[shift] = _bored(_wgs_to_gcj, _gcj_to_wgs_rough, la[shift], lo[shift])
    return la, lo


# The constants and formulas below are prcoords' (CC0), written for arrays; a test checks the two
# agree point by point.
_GCJ_A = 6378245
_GCJ_EE = 0.00669342162296594323
_PRC_EPS = 1e-5
_BD_DLAT = 0.0060
_BD_DLON = 0.0065


def _in_china(lat: F64, lon: F64) -> NDArray[np.bool_]:
    return (lat >= 0.8293) & (lat <= 55.8271) & (lon >= 72.004) & (lon <= 137.8347)


def _wgs_to_gcj(lat: F64, lon: F64) -> tuple[F64, F64]:
    x, y = lon - 105, lat - 35
    pi = math.pi
    d_lat_m = (
        -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * pi) + 2 * np.sin(x * 2 * pi)
            + 2 * np.sin(y * pi) + 4 * np.sin(y / 3 * pi)
            + 16 * np.sin(y / 12 * pi) + 32 * np.sin(y / 30 * pi)
        ) * 20 / 3
    )  # fmt: skip
    d_lon_m = (
        300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (
            2 * np.sin(x * 6 * pi) + 2 * np.sin(x * 2 * pi)
            + 2 * np.sin(x * pi) + 4 * np.sin(x / 3 * pi)
            + 15 * np.sin(x / 12 * pi) + 30 * np.sin(x / 30 * pi)
        ) * 20 / 3
    )  # fmt: skip
    rad_lat = np.radians(lat)
    magic = 1 - _GCJ_EE * np.power(np.sin(rad_lat), 2)
    lat_deg_arclen = np.radians((_GCJ_A * (1 - _GCJ_EE)) / np.power(magic, 1.5))
    lon_deg_arclen = np.radians(_GCJ_A * np.cos(rad_lat) / np.sqrt(magic))
    return lat + d_lat_m / lat_deg_arclen, lon + d_lon_m / lon_deg_arclen


def _gcj_to_wgs_rough(lat: F64, lon: F64) -> tuple[F64, F64]:
    glat, glon = _wgs_to_gcj(lat, lon)
    return lat - (glat - lat), lon - (glon - lon)


def _gcj_to_bd(lat: F64, lon: F64) -> tuple[F64, F64]:
    y, x = lat, lon
    r = np.sqrt(x * x + y * y) + 0.00002 * np.sin(np.radians(y) * 3000)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(np.radians(x) * 3000)
    return r * np.sin(theta) + _BD_DLAT, r * np.cos(theta) + _BD_DLON


def _bd_to_gcj_rough(lat: F64, lon: F64) -> tuple[F64, F64]:
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    r = np.sqrt(x * x + y * y) - 0.00002 * np.sin(np.radians(y) * 3000)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(np.radians(x) * 3000)
    return r * np.sin(theta), r * np.cos(theta)


def _bored(
    forward: Callable[[F64, F64], tuple[F64, F64]],
    rough: Callable[[F64, F64], tuple[F64, F64]],
    lat: F64,
    lon: F64,
) -> tuple[F64, F64]:
    """Invert ``forward`` by prcoords' fixed-point iteration, each point stopping on its own."""
    out_lat, out_lon = rough(lat, lon)
    active = np.arange(lat.size)
    for _ in range(10):
        if active.size == 0:
            break
        f_lat, f_lon = forward(out_lat[active], out_lon[active])
        d_lat, d_lon = f_lat - lat[active], f_lon - lon[active]
        out_lat[active] -= d_lat
        out_lon[active] -= d_lon
        active = active[np.hypot(d_lat, d_lon) > _PRC_EPS]
    return out_lat, out_lon


# --- the spatial index ----------------------------------------------------------------------


def _xyz(lat: ArrayLike, lon: ArrayLike) -> F64:
    """ECEF positions of WGS-84 points (height 0) in units of the equatorial radius, (n, 3)."""
    phi, lam = np.radians(np.atleast_1d(lat)), np.radians(np.atleast_1d(lon))
    sin_phi, cos_phi = np.sin(phi), np.cos(phi)
    n = 1 / np.sqrt(1 - _WGS84_E2 * sin_phi * sin_phi)  # prime vertical radius / a
    return np.stack(
        [n * cos_phi * np.cos(lam), n * cos_phi * np.sin(lam), n * (1 - _WGS84_E2) * sin_phi],
        axis=-1,
    )


def _xyz_one(lat: float, lon: float) -> list[float]:
    """:func:`_xyz` of one point, without numpy's per-call overhead (a query's hot path)."""
    phi, lam = math.radians(lat), math.radians(lon)
    sin_phi, cos_phi = math.sin(phi), math.cos(phi)
    n = 1 / math.sqrt(1 - _WGS84_E2 * sin_phi * sin_phi)
    return [n * cos_phi * math.cos(lam), n * cos_phi * math.sin(lam), n * (1 - _WGS84_E2) * sin_phi]


def _chord_for(metres: float) -> float:
    """A chord (in tree units) that every point within ``metres`` geodesic lies inside.

    The straight line between two points is never longer than the geodesic joining them.
    """
    return metres / _WGS84_A * (1 + _SLACK) + 1e-15


def _metres_beyond(chord: float) -> float:
    """Every point at least ``chord`` away (tree units) is at least this far, geodesic."""
    return chord * _WGS84_A * (1 - _SLACK) - 1e-6  # a micrometre: rounding of sin/cos near 0


def _geodesic(lat: float, lon: float, lats: F64, lons: F64) -> F64:
    """Geodesic metres on WGS-84 from one point to many (PROJ's geodesic, in C)."""
    if lats.size == 0:
        return np.empty(0)
    _, _, dist = _GEOD.inv(np.full(lats.size, lon), np.full(lats.size, lat), lons, lats)
    return np.asarray(dist, dtype=np.float64)


def _check_query(limit: int, radius_m: float | None) -> None:
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    if radius_m is not None and not (math.isfinite(radius_m) and radius_m >= 0):
        raise ValueError(f"radius_m must be a finite number of metres >= 0, got {radius_m}")


T = TypeVar("T")


class _Points(Generic[T]):
    """Items at WGS-84 points on a cKDTree, with exact geodesic re-ranking."""

    def __init__(self, items: Sequence[T], ids: Sequence[str], lat: F64, lon: F64) -> None:
        self.items = list(items)
        self.lat, self.lon = lat, lon
        self.tree = cKDTree(_xyz(lat, lon).reshape(-1, 3))
        # Rank of each id in sorted order: ties in distance are broken by it.
        self.rank = np.empty(len(ids), dtype=np.int64)
        self.rank[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(len(ids))
        self.rank_list: list[int] = self.rank.tolist()

    def __len__(self) -> int:
        return len(self.items)

    def ranked(self, lat: float, lon: float, idx: I64) -> tuple[I64, F64]:
        """``idx`` measured from the point and sorted nearest first (ties by id)."""
        metres = _geodesic(lat, lon, self.lat[idx], self.lon[idx])
        order = np.lexsort((self.rank[idx], metres))
        return idx[order], metres[order]

    def within(self, lat: float, lon: float, radius_m: float) -> tuple[I64, F64]:
        """Every item within ``radius_m`` geodesic metres, nearest first (ties by id)."""
        found = self.tree.query_ball_point(_xyz_one(lat, lon), _chord_for(radius_m))
        idx, metres = self.ranked(lat, lon, np.asarray(found, dtype=np.int64))
        inside = metres <= radius_m
        return idx[inside], metres[inside]

    def nearest(
        self,
        lat: float,
        lon: float,
        *,
        limit: int,
        radius_m: float | None,
        keep: Callable[[list[int]], list[int]] | None,
    ) -> list[tuple[float, int, int]]:
        """Up to ``limit`` items nearest to the point: ``(metres, id rank, index)``, nearest first.

        ``keep`` filters a list of candidate indices (say, groups with room); it only ever sees
        the few candidates, never every item.
        """
        n = len(self.items)
        if limit <= 0 or n == 0:
            return []
        q = _xyz_one(lat, lon)
        # A few more than asked: some may be filtered out (full groups), and the bound below
        # needs one candidate beyond the answer. Too few costs a second, wider look, not a miss.
        k = min(n, limit + 6)
        while True:
            if radius_m is None:
                chords, found = self.tree.query(q, k=k)
            else:
                chords, found = self.tree.query(q, k=k, distance_upper_bound=_chord_for(radius_m))
            found_list = found.tolist() if k > 1 else [found]
            exhausted = k == n or found_list[-1] == n  # nothing unseen lies within the bound
            cand = [i for i in found_list if i < n]
            best = self._measured(lat, lon, cand if keep is None else keep(cand), radius_m)
            if exhausted:
                return best[:limit]
            if len(best) >= limit:
                kth = best[limit - 1][0]
                if kth < _metres_beyond(float(chords[-1] if k > 1 else chords)):
                    return best[:limit]
                # Unseen items may still tie or beat the k-th: take every item that close.
                cand = self.tree.query_ball_point(q, _chord_for(kth))
                return self._measured(lat, lon, cand if keep is None else keep(cand), kth)[:limit]
            k = min(n, k * 4)  # too many candidates were filtered out: look farther

    def _measured(
        self, lat: float, lon: float, idx: list[int], radius_m: float | None
    ) -> list[tuple[float, int, int]]:
        """``(metres, id rank, index)`` of ``idx`` within ``radius_m``, nearest first.

        Plain lists: for the dozen candidates of a query they beat numpy's per-call overhead.
        """
        if not idx:
            return []
        arr = np.array(idx, dtype=np.int64)
        metres = _geodesic(lat, lon, self.lat[arr], self.lon[arr]).tolist()
        rank = self.rank_list
        best = sorted(zip(metres, [rank[i] for i in idx], idx, strict=True))
        if radius_m is not None:
            best = [b for b in best if b[0] <= radius_m]
        return best


def _positions(locations: Sequence[Location]) -> tuple[F64, F64]:
    """WGS-84 latitudes and longitudes of ``locations``, converted in one vectorised pass."""
    return to_wgs84_many(
        [loc.lat for loc in locations],
        [loc.lon for loc in locations],
        [loc.crs for loc in locations],
    )


def _points(items: Sequence[T], ids: Sequence[str], locations: Sequence[Location]) -> _Points[T]:
    return _Points(items, ids, *_positions(locations))


@dataclass(frozen=True)
class RouteResult:
    """A group that can take a new member, its geodesic distance and its current member count."""

    group: WelfareGroup
    distance_m: float
    members: int


class GroupIndex:
    """Welfare groups indexed for "which groups near me can still take a member?".

    Every group's location is converted to WGS-84 once, vectorised, when the index is built
    (once per ops-data version).
    """

    def __init__(self, groups: Iterable[WelfareGroup]) -> None:
        items = list(groups)
        self._points = _points(items, [g.id for g in items], [g.location for g in items])
        # Plain lists: a query reads a handful of entries, where Python lists beat numpy.
        self._ids = [g.id for g in items]
        self._members = [g.members for g in items]
        self._capacity = [g.capacity for g in items]
        self._room = [g.members < g.capacity for g in items]

    def __len__(self) -> int:
        return len(self._points)

    def nearest(
        self,
        lat: float,
        lon: float,
        crs: str = "gcj02",
        *,
        limit: int = 5,
        member_counts: Mapping[str, int] | None = None,
        radius_m: float | None = None,
    ) -> list[RouteResult]:
        """The ``limit`` nearest groups with room, nearest first, within ``radius_m`` if given.

        A group is full when its member count reaches its capacity; ``member_counts`` (group id to
        live count) overrides the ``members`` written in the directory. Distances are geodesic
        metres on the WGS-84 ellipsoid; equal distances are ordered by group id. Invalid
        coordinates raise ``ValueError``.
        """
        _check_query(limit, radius_m)
        wlat, wlon = to_wgs84(lat, lon, crs)
        counts = member_counts or {}
        groups = self._points.items
        if counts:
            ids, members, capacity = self._ids, self._members, self._capacity

            def has_room(idx: list[int]) -> list[int]:
                return [i for i in idx if counts.get(ids[i], members[i]) < capacity[i]]
        else:
            room = self._room

            def has_room(idx: list[int]) -> list[int]:
                return [i for i in idx if room[i]]

        found = self._points.nearest(wlat, wlon, limit=limit, radius_m=radius_m, keep=has_room)
        ids, members = self._ids, self._members
        return [
            RouteResult(groups[i], metres, counts.get(ids[i], members[i]) if counts else members[i])
            for metres, _, i in found
        ]

    def offer(
        self,
        lat: float,
        lon: float,
        crs: str = "gcj02",
        *,
        radius_m: float,
        beyond_m: float | None = None,
        limit: int = 5,
        member_counts: Mapping[str, int] | None = None,
        exclude: Collection[str] = (),
    ) -> tuple[list[RouteResult], bool]:
        """What a newcomer at the point is offered — the one rule of the entry page, the
        private chat and ``qunfu route``: the nearest groups with room within ``radius_m``; when
        none there has room, the nearest with room beyond it, up to ``beyond_m`` (never less
        than ``radius_m``; then the second item is True). ``exclude``: ids of the groups the
        person is in, never offered."""
        # The index knows nothing of people: ask for enough to still have `limit` after dropping.
        k = limit + len(exclude)
        near = self.nearest(lat, lon, crs, limit=k, member_counts=member_counts, radius_m=radius_m)
        offers = [r for r in near if r.group.id not in exclude][:limit]
        if offers:
            return offers, False
        reach = None if beyond_m is None else max(beyond_m, radius_m)
        further = self.nearest(lat, lon, crs, limit=k, member_counts=member_counts, radius_m=reach)
        return [r for r in further if r.group.id not in exclude][:limit], True


def _day_bits(merchant: Merchant) -> int:
    """Bit i set when the merchant's offer runs on WEEKDAYS[i] (no ``days`` = every day)."""
    if not merchant.days:
        return (1 << len(WEEKDAYS)) - 1
    return sum(1 << WEEKDAYS.index(d) for d in set(merchant.days))


def _check_weekday(weekday: str | None) -> None:
    if weekday is not None and weekday not in WEEKDAYS:
        raise ValueError(f"weekday {weekday!r} is not known; expected one of {WEEKDAYS}")


class MerchantIndex:
    """Merchants indexed for "which merchants with an offer are near this point?"."""

    def __init__(self, merchants: Iterable[Merchant]) -> None:
        items = list(merchants)
        self._points = _points(items, [m.id for m in items], [m.location for m in items])
        self._categories = sorted({m.category for m in items})
        self._category = np.array(
            [self._categories.index(m.category) for m in items] if items else [], dtype=np.int32
        )
        self._days = np.array([_day_bits(m) for m in items], dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._points)

    @property
    def merchants(self) -> list[Merchant]:
        """The merchants, in index order."""
        return self._points.items

    def fits(
        self, idx: I64, categories: Collection[str] | None, weekday: str | None
    ) -> NDArray[np.bool_]:
        """Which merchants at ``idx`` are of one of ``categories`` and open on ``weekday``."""
        ok = np.ones(idx.size, dtype=bool)
        if categories is not None:
            codes = [self._categories.index(c) for c in set(categories) if c in self._categories]
            ok &= np.isin(self._category[idx], codes)
        if weekday is not None:
            ok &= (self._days[idx] & (1 << WEEKDAYS.index(weekday))) != 0
        return ok

    def near(
        self,
        lat: float,
        lon: float,
        crs: str = "gcj02",
        *,
        radius_m: float,
        categories: Collection[str] | None = None,
        weekday: str | None = None,
        limit: int = 5,
    ) -> list[tuple[Merchant, float]]:
        """Up to ``limit`` merchants within ``radius_m`` metres, nearest first, with distances.

        ``categories`` keeps merchants of those categories (such as 早餐, 午餐, 晚餐, 电影);
        ``weekday`` (mon..sun) keeps merchants whose offer runs that day (no ``days`` = every day).
        Equal distances are ordered by merchant id.
        """
        _check_query(limit, radius_m)
        _check_weekday(weekday)
        wlat, wlon = to_wgs84(lat, lon, crs)
        idx, metres = self._points.within(wlat, wlon, radius_m)
        ok = self.fits(idx, categories, weekday)
        items = self._points.items
        return [
            (items[i], d)
            for i, d in zip(idx[ok][:limit].tolist(), metres[ok][:limit].tolist(), strict=True)
        ]


# --- merchant neighbourhoods ----------------------------------------------------------------

_CHUNK = 4096  # groups per batch: bounds the transient arrays of one batch


@dataclass(frozen=True)
class _Pairs:
    """Every (group, merchant) pair within a radius, grouped by group, nearest first (CSR)."""

    radius_m: float
    start: I64  # row g is merchant[start[g]:start[g + 1]]
    merchant: NDArray[np.int32]
    metres: F64

    @property
    def nbytes(self) -> int:
        return self.start.nbytes + self.merchant.nbytes + self.metres.nbytes


class MerchantNeighbourhoods:
    """Each group's merchants within a radius, computed for all groups at once.

    Built once per ops-data version: group and merchant positions are converted in one
    vectorised pass, candidate pairs come from one cKDTree pair query per batch of groups, and
    their exact distances from one batched geodesic call. A lookup is then a slice. A radius
    larger than the one precomputed is computed on demand, once, and kept: for the merchants of
    the asked categories alone when there are categories, else for every merchant.
    """

    def __init__(
        self,
        groups: Iterable[WelfareGroup],
        merchants: Iterable[Merchant] | MerchantIndex,
        radius_m: float,
    ) -> None:
        _check_query(0, radius_m)
        self.merchants = merchants if isinstance(merchants, MerchantIndex) else MerchantIndex(
            merchants
        )
        self.groups = list(groups)
        self._row = {g.id: i for i, g in enumerate(self.groups)}
        self._glat, self._glon = _positions([g.location for g in self.groups])
        self.radius_m = radius_m
        self._pairs: dict[float, _Pairs] = {}
        self._selections: dict[tuple[object, ...], _Pairs] = {}
        self._by_category: dict[tuple[float, frozenset[str]], _Pairs] = {}
        self.pairs(radius_m)

    @property
    def nbytes(self) -> int:
        """Bytes held by the precomputed pairs and the selections cut from them."""
        held = [*self._pairs.values(), *self._by_category.values(), *self._selections.values()]
        return sum(p.nbytes for p in held)

    def pairs(self, radius_m: float) -> _Pairs:
        """All pairs within ``radius_m``: cut from a wider precomputed radius, else computed."""
        if radius_m in self._pairs:
            return self._pairs[radius_m]
        wider = [r for r in self._pairs if r >= radius_m]
        if wider:
            pairs = _cut(self._pairs[min(wider)], radius_m, np.ones(0, dtype=bool))
        else:
            pairs = self._compute(radius_m)
        self._pairs[radius_m] = pairs
        return pairs

    def _compute(self, radius_m: float, only: I64 | None = None) -> _Pairs:
        """Every pair within ``radius_m``; with ``only``, pairs with those merchants alone."""
        pts = self.merchants._points
        tree = pts.tree
        if only is not None:
            tree = cKDTree(_xyz(pts.lat[only], pts.lon[only]).reshape(-1, 3))
        chord = _chord_for(radius_m)
        rows, cols, dists = [], [], []
        for lo in range(0, len(self.groups), _CHUNK):
            glat, glon = self._glat[lo : lo + _CHUNK], self._glon[lo : lo + _CHUNK]
            chunk = cKDTree(_xyz(glat, glon).reshape(-1, 3))
            found = chunk.sparse_distance_matrix(tree, chord, output_type="ndarray")
            g = found["i"].astype(np.int64)
            m = found["j"].astype(np.int64)
            if only is not None:
                m = only[m]
            if g.size:
                _, _, d = _GEOD.inv(glon[g], glat[g], pts.lon[m], pts.lat[m])
                d = np.asarray(d, dtype=np.float64)
            else:
                d = np.empty(0)
            inside = d <= radius_m
            rows.append(g[inside] + lo)
            cols.append(m[inside])
            dists.append(d[inside])
        g = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        m = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
        d = np.concatenate(dists) if dists else np.empty(0)
        order = np.lexsort((pts.rank[m], d, g))
        start = np.searchsorted(g[order], np.arange(len(self.groups) + 1)).astype(np.int64)
        return _Pairs(radius_m, start, m[order].astype(np.int32), d[order])

    def selection(
        self,
        radius_m: float,
        categories: Collection[str] | None,
        weekday: str | None,
        limit: int,
    ) -> _Pairs:
        """For every group at once: its first ``limit`` merchants that fit (cached per key)."""
        _check_query(limit, radius_m)
        _check_weekday(weekday)
        key = (radius_m, None if categories is None else frozenset(categories), weekday, limit)
        if key not in self._selections:
            if categories is not None and not any(r >= radius_m for r in self._pairs):
                # Wider than anything precomputed (a cinema campaign's 3 km): pairs with the
                # merchants of these categories only, not every merchant within 3 km.
                pairs = self._category_pairs(radius_m, frozenset(categories))
            else:
                pairs = self.pairs(radius_m)
            keep = self.merchants.fits(pairs.merchant.astype(np.int64), categories, weekday)
            self._selections[key] = _cut(pairs, radius_m, keep, limit)
        return self._selections[key]

    def _category_pairs(self, radius_m: float, categories: frozenset[str]) -> _Pairs:
        """Pairs within ``radius_m`` with merchants of ``categories`` (cached per both)."""
        key = (radius_m, categories)
        if key not in self._by_category:
            everyone = np.arange(len(self.merchants), dtype=np.int64)
            only = everyone[self.merchants.fits(everyone, categories, None)]
            self._by_category[key] = self._compute(radius_m, only)
        return self._by_category[key]

    def near(
        self,
        group: WelfareGroup,
        *,
        radius_m: float | None = None,
        categories: Collection[str] | None = None,
        weekday: str | None = None,
        limit: int = 5,
    ) -> list[tuple[Merchant, float]]:
        """``group``'s merchants within ``radius_m`` (default: the precomputed radius).

        Same answer as :meth:`MerchantIndex.near` at the group's location. A group this
        neighbourhood was not built with (or a changed copy of one) is measured directly.
        """
        return self.lookup(
            radius_m=radius_m, categories=categories, weekday=weekday, limit=limit
        )(group)

    def lookup(
        self,
        *,
        radius_m: float | None = None,
        categories: Collection[str] | None = None,
        weekday: str | None = None,
        limit: int = 5,
    ) -> Callable[[WelfareGroup], list[tuple[Merchant, float]]]:
        """:meth:`near` with the query fixed: the selection is found once, so asking for each
        of 20,000 groups in a fan-out costs a slice of it."""
        radius = self.radius_m if radius_m is None else radius_m
        items = self.merchants.merchants
        # The selection as plain lists, once a group needs it: slicing a list per group is
        # cheaper than slicing arrays and converting the slices.
        found: list[tuple[list[int], list[int], list[float]]] = []

        def near(group: WelfareGroup) -> list[tuple[Merchant, float]]:
            row = self._row.get(group.id)
            if row is None or self.groups[row] is not group:
                loc = group.location
                return self.merchants.near(
                    loc.lat, loc.lon, loc.crs, radius_m=radius, categories=categories,
                    weekday=weekday, limit=limit,
                )  # fmt: skip
            if not found:
                chosen = self.selection(radius, categories, weekday, limit)
                found.append(
                    (chosen.start.tolist(), chosen.merchant.tolist(), chosen.metres.tolist())
                )
            starts, merchant, metres = found[0]
            a, b = starts[row], starts[row + 1]
            return [(items[i], d) for i, d in zip(merchant[a:b], metres[a:b], strict=True)]

        return near


def _cut(pairs: _Pairs, radius_m: float, keep: NDArray[np.bool_], limit: int = -1) -> _Pairs:
    """Pairs within ``radius_m`` that ``keep`` (empty: all), at most ``limit`` a group (-1: all)."""
    ok = pairs.metres <= radius_m
    if keep.size:
        ok &= keep
    rows = np.repeat(np.arange(pairs.start.size - 1), np.diff(pairs.start))[ok]
    merchant, metres = pairs.merchant[ok], pairs.metres[ok]
    start = np.searchsorted(rows, np.arange(pairs.start.size)).astype(np.int64)
    if limit >= 0:
        # Position of each kept pair within its group's row: keep the first `limit` of each.
        rank = np.arange(rows.size) - start[rows]
        first = rank < limit
        rows, merchant, metres = rows[first], merchant[first], metres[first]
        start = np.searchsorted(rows, np.arange(pairs.start.size)).astype(np.int64)
    return _Pairs(radius_m, start, merchant, metres)


def merchants_near(
    group: WelfareGroup,
    merchants: Iterable[Merchant] | MerchantIndex | MerchantNeighbourhoods,
    *,
    radius_m: float,
    categories: Collection[str] | None = None,
    weekday: str | None = None,
    limit: int = 5,
) -> list[tuple[Merchant, float]]:
    """Merchants within ``radius_m`` of ``group``, nearest first, with geodesic metres.

    Pass a ``MerchantNeighbourhoods`` (or at least a ``MerchantIndex``) when calling for many
    groups: a plain iterable is indexed anew on every call.
    """
    if isinstance(merchants, MerchantNeighbourhoods):
        return merchants.near(
            group, radius_m=radius_m, categories=categories, weekday=weekday, limit=limit
        )
    index = merchants if isinstance(merchants, MerchantIndex) else MerchantIndex(merchants)
    loc = group.location
    return index.near(
        loc.lat,
        loc.lon,
        loc.crs,
        radius_m=radius_m,
        categories=categories,
        weekday=weekday,
        limit=limit,
    )
