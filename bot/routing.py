"""Distances between people, welfare groups and merchants: the one home for geometry in Qunfu.

Points arrive in the coordinate system they were taken in (WeChat shares GCJ-02, Baidu maps use
BD-09, GPS uses WGS-84). Everything is converted to WGS-84 once, then:

* a grid of lat/lon cells finds candidates, expanding ring by ring around the query; a rigorous
  spherical lower bound (the sphere of the smallest WGS-84 radius of curvature never overestimates
  an ellipsoidal distance) tells when no farther cell can still matter;
* the short list is measured with geographiclib's WGS-84 geodesic (the very solver behind
  ``geopy.distance.geodesic``, called directly to skip geopy's per-call overhead), so the distances
  returned, and their order, are exact rather than approximations.

Groups and merchants are expected in and around China; the index does not wrap around the
antimeridian.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Generic, TypeVar

import prcoords
from geographiclib.geodesic import Geodesic

from bot.opsdata.models import WEEKDAYS, Merchant, WelfareGroup

_WGS84 = Geodesic.WGS84
_DISTANCE = Geodesic.DISTANCE

__all__ = ["GroupIndex", "MerchantIndex", "RouteResult", "merchants_near", "to_wgs84"]

CRS_NAMES = ("gcj02", "bd09", "wgs84")

_WGS84_A = 6_378_137.0
_WGS84_F = 1 / 298.257223563
_WGS84_E2 = _WGS84_F * (2 - _WGS84_F)
# Radii of curvature of WGS-84 lie between the meridional radius at the equator and the polar
# radius. A sphere of the smaller one (with a hair of float slack) bounds every geodesic from
# below, a sphere of the larger one from above.
_R_LOW = _WGS84_A * (1 - _WGS84_E2) * (1 - 1e-9)
_R_HIGH = _WGS84_A / math.sqrt(1 - _WGS84_E2) * (1 + 1e-9)

_BASE_CELL_DEG = 0.1
_MIN_CELL_DEG = 0.1 / 16
_TARGET_LOAD = 24  # mean number of items sharing a cell with an item
_BLOCK_DEG = 1.0


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
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number of degrees, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    if not -limit <= v <= limit:
        raise ValueError(f"{name} {v} is out of range; expected {-limit:g} to {limit:g} degrees")
    return v


@dataclass(frozen=True)
class RouteResult:
    """A group that can take a new member, its geodesic distance and its current member count."""

    group: WelfareGroup
    distance_m: float
    members: int


T = TypeVar("T")


class _Grid(Generic[T]):
    """Items on a lat/lon grid; exact k-nearest by ring expansion and geodesic refinement."""

    def __init__(self, entries: Iterable[tuple[T, float, float]]) -> None:
        self._items: list[T] = []
        self._lat: list[float] = []
        self._lon: list[float] = []
        for item, lat, lon in entries:
            self._items.append(item)
            self._lat.append(lat)
            self._lon.append(lon)
        self._phi = [math.radians(v) for v in self._lat]
        self._lam = [math.radians(v) for v in self._lon]
        self._cos = [math.cos(v) for v in self._phi]
        self._cell = self._pick_cell_size()
        self._cells: dict[tuple[int, int], list[int]] = {}
        for idx in range(len(self._items)):
            self._cells.setdefault(self._key(self._lat[idx], self._lon[idx]), []).append(idx)
        # Blocks of about one degree group the cells, so a query far from every item can skip
        # whole blocks instead of bounding thousands of cells one by one.
        self._block = max(1, round(_BLOCK_DEG / self._cell))
        self._blocks: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, j in self._cells:
            self._blocks.setdefault((i // self._block, j // self._block), []).append((i, j))

    def __len__(self) -> int:
        return len(self._items)

    def _pick_cell_size(self) -> float:
        """Halve ~0.1 degree cells while dense places would put too many items in one cell."""
        cell = _BASE_CELL_DEG
        n = len(self._items)
        while n and cell > _MIN_CELL_DEG:
            counts = Counter(
                (math.floor(a / cell), math.floor(b / cell))
                for a, b in zip(self._lat, self._lon, strict=True)
            )
            if sum(c * c for c in counts.values()) / n <= _TARGET_LOAD:
                break
            cell /= 2
        return cell

    def _key(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self._cell), math.floor(lon / self._cell)

    def nearest(
        self,
        lat: float,
        lon: float,
        *,
        limit: int,
        radius_m: float | None,
        keep: Callable[[T], bool] | None,
    ) -> list[tuple[T, float]]:
        """Up to ``limit`` kept items nearest to the WGS-84 point, with geodesic metres."""
        if limit <= 0 or not self._items:
            return []
        query = _Query(self, lat, lon, limit, radius_m, keep)
        query.gather()
        return query.refine()


class _Query(Generic[T]):
    """State of one nearest search: candidates as central angles on the unit sphere."""

    def __init__(
        self,
        grid: _Grid[T],
        lat: float,
        lon: float,
        limit: int,
        radius_m: float | None,
        keep: Callable[[T], bool] | None,
    ) -> None:
        self.g = grid
        self.lat, self.lon = lat, lon
        self.phi, self.lam = math.radians(lat), math.radians(lon)
        self.cos = math.cos(self.phi)
        self.limit = limit
        self.radius_m = math.inf if radius_m is None else radius_m
        self.keep = keep
        self.candidates: list[tuple[float, int]] = []
        self._best: list[float] = []  # max-heap (negated) of the `limit` smallest angles

    def cutoff_m(self) -> float:
        """No item farther than this (in metres) can still be in the answer."""
        if len(self._best) < self.limit:
            return self.radius_m
        return min(self.radius_m, -self._best[0] * _R_HIGH)

    def add_cell(self, idxs: list[int]) -> None:
        g = self.g
        phi, lam, cos_q = self.phi, self.lam, self.cos
        max_angle = self.cutoff_m() / _R_LOW
        for idx in idxs:
            s_phi = math.sin((g._phi[idx] - phi) / 2)
            s_lam = math.sin((g._lam[idx] - lam) / 2)
            h = s_phi * s_phi + cos_q * g._cos[idx] * s_lam * s_lam
            angle = 2 * math.asin(math.sqrt(min(1.0, h)))
            if angle > max_angle or (self.keep is not None and not self.keep(g._items[idx])):
                continue
            self.candidates.append((angle, idx))
            if len(self._best) < self.limit:
                heapq.heappush(self._best, -angle)
            elif angle < -self._best[0]:
                heapq.heapreplace(self._best, -angle)
            else:
                continue
            max_angle = self.cutoff_m() / _R_LOW

    def gather(self) -> None:
        """Visit cells ring by ring until the ring's lower bound passes the cutoff."""
        g = self.g
        i0, j0 = g._key(self.lat, self.lon)
        seen = lookups = 0
        r = 0
        while True:
            for key in _ring(i0, j0, r):
                lookups += 1
                idxs = g._cells.get(key)
                if idxs:
                    seen += 1
                    self.add_cell(idxs)
            if seen == len(g._cells) or _R_LOW * self._ring_bound(i0, j0, r) > self.cutoff_m():
                return
            r += 1
            if lookups + 8 * r > len(g._cells):
                self._scan_rest(i0, j0, r - 1)
                return

    def _ring_bound(self, i0: int, j0: int, r: int) -> float:
        """Least central angle from the query to any point outside the block of rings 0..r."""
        c = math.radians(self.g._cell)
        south, north = (i0 - r) * c, (i0 + r + 1) * c
        west, east = (j0 - r) * c, (j0 + r + 1) * c
        bound = math.pi
        if south > -math.pi / 2:
            bound = min(bound, self.phi - south)
        if north < math.pi / 2:
            bound = min(bound, north - self.phi)
        if east - west < 2 * math.pi:
            west_gap = self._meridian_gap(self.lam - west)
            bound = min(bound, west_gap, self._meridian_gap(east - self.lam))
        return bound

    def _meridian_gap(self, dlam: float) -> float:
        """Least central angle from the query to a meridian ``dlam`` radians away (dlam >= 0)."""
        return math.asin(min(1.0, self.cos * math.sin(min(dlam, math.pi / 2))))

    def _cell_bound(self, key: tuple[int, int], cells: int = 1) -> float:
        """Least central angle from the query to the cell ``key`` (or block of ``cells`` cells)."""
        c = math.radians(self.g._cell * cells)
        i, j = key
        lat_gap = max(i * c - self.phi, self.phi - (i + 1) * c, 0.0)
        lon_gap = max(j * c - self.lam, self.lam - (j + 1) * c, 0.0)
        return max(lat_gap, self._meridian_gap(lon_gap))

    def _scan_rest(self, i0: int, j0: int, done: int) -> None:
        """Sparse data: visit the remaining cells by nearest block instead of ring by ring."""
        g = self.g
        blocks = sorted((self._cell_bound(b, g._block), b) for b in g._blocks)
        for block_bound, block in blocks:
            if _R_LOW * block_bound > self.cutoff_m():
                return
            cells = sorted(
                (self._cell_bound(key), key)
                for key in g._blocks[block]
                if max(abs(key[0] - i0), abs(key[1] - j0)) > done
            )
            for bound, key in cells:
                if _R_LOW * bound > self.cutoff_m():
                    break
                self.add_cell(g._cells[key])

    def refine(self) -> list[tuple[T, float]]:
        """Measure candidates on the WGS-84 geodesic, nearest first, until none can improve."""
        g = self.g
        top: list[tuple[float, int]] = []  # max-heap (negated) of exact distances
        inverse = _WGS84.Inverse
        for angle, idx in sorted(self.candidates):
            limit_m = self.radius_m if len(top) < self.limit else min(self.radius_m, -top[0][0])
            if _R_LOW * angle > limit_m:
                break
            metres = inverse(self.lat, self.lon, g._lat[idx], g._lon[idx], _DISTANCE)["s12"]
            if metres > self.radius_m:
                continue
            if len(top) < self.limit:
                heapq.heappush(top, (-metres, -idx))
            elif metres < -top[0][0]:
                heapq.heapreplace(top, (-metres, -idx))
        ranked = sorted((-m, -i) for m, i in top)
        return [(g._items[idx], metres) for metres, idx in ranked]


def _ring(i0: int, j0: int, r: int) -> Iterable[tuple[int, int]]:
    if r == 0:
        yield i0, j0
        return
    for j in range(j0 - r, j0 + r + 1):
        yield i0 - r, j
        yield i0 + r, j
    for i in range(i0 - r + 1, i0 + r):
        yield i, j0 - r
        yield i, j0 + r


def _check_query(limit: int, radius_m: float | None) -> None:
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    if radius_m is not None and not (math.isfinite(radius_m) and radius_m >= 0):
        raise ValueError(f"radius_m must be a finite number of metres >= 0, got {radius_m}")


class GroupIndex:
    """Welfare groups indexed for "which groups near me can still take a member?".

    Every group's location is converted to WGS-84 once, when the index is built.
    """

    def __init__(self, groups: Iterable[WelfareGroup]) -> None:
        self._grid: _Grid[WelfareGroup] = _Grid(
            (g, *to_wgs84(g.location.lat, g.location.lon, g.location.crs)) for g in groups
        )

    def __len__(self) -> int:
        return len(self._grid)

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
        metres on the WGS-84 ellipsoid. Invalid coordinates raise ``ValueError``.
        """
        _check_query(limit, radius_m)
        wlat, wlon = to_wgs84(lat, lon, crs)
        counts = member_counts or {}

        def has_room(g: WelfareGroup) -> bool:
            return counts.get(g.id, g.members) < g.capacity

        found = self._grid.nearest(wlat, wlon, limit=limit, radius_m=radius_m, keep=has_room)
        return [RouteResult(g, metres, counts.get(g.id, g.members)) for g, metres in found]


class MerchantIndex:
    """Merchants indexed for "which merchants with an offer are near this group?"."""

    def __init__(self, merchants: Iterable[Merchant]) -> None:
        self._grid: _Grid[Merchant] = _Grid(
            (m, *to_wgs84(m.location.lat, m.location.lon, m.location.crs)) for m in merchants
        )

    def __len__(self) -> int:
        return len(self._grid)

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
        """
        _check_query(limit, radius_m)
        if weekday is not None and weekday not in WEEKDAYS:
            raise ValueError(f"weekday {weekday!r} is not known; expected one of {WEEKDAYS}")
        wlat, wlon = to_wgs84(lat, lon, crs)
        wanted = None if categories is None else frozenset(categories)

        def fits(m: Merchant) -> bool:
            if wanted is not None and m.category not in wanted:
                return False
            return weekday is None or not m.days or weekday in m.days

        return self._grid.nearest(wlat, wlon, limit=limit, radius_m=radius_m, keep=fits)


def merchants_near(
    group: WelfareGroup,
    merchants: Iterable[Merchant] | MerchantIndex,
    *,
    radius_m: float,
    categories: Collection[str] | None = None,
    weekday: str | None = None,
    limit: int = 5,
) -> list[tuple[Merchant, float]]:
    """Merchants within ``radius_m`` of ``group``, nearest first, with geodesic metres.

    Pass a ``MerchantIndex`` when calling for many groups: a plain iterable is indexed anew on
    every call.
    """
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
