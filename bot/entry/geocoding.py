"""Turning what a visitor typed or picked into a point: the offline gazetteer and geopy geocoders.

The gazetteer (campaigns/gazetteer.yaml) lists cities, districts and landmarks in GCJ-02. It
backs the city/district pickers and :class:`GazetteerGeocoder`, a geopy ``Geocoder`` that works
offline: ``geocode("深圳南山科技园")`` gives a ``geopy.location.Location`` in WGS-84, like every
geopy geocoder. :func:`make_geocoder` picks the configured one (``gazetteer``, or any geopy
service such as ``nominatim``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from geopy.geocoders import get_geocoder_for_service
from geopy.geocoders.base import Geocoder
from geopy.location import Location as GeoLocation

from bot.config import EntrySettings
from bot.opsdata.models import GazetteerCity, GazetteerDistrict, Location
from bot.routing import to_wgs84

_DISTRICT_SUFFIXES = ("新区", "区", "县")
_NOISE = str.maketrans("", "", " \t\r\n　,，。.、（）()-_/")


@dataclass(frozen=True)
class Place:
    """A gazetteer entry matched for a query: where, and the city/district it lies in."""

    label: str
    city: str
    district: str | None
    location: Location
    kind: str  # landmark | district | city

    def wgs84(self) -> tuple[float, float]:
        return to_wgs84(self.location.lat, self.location.lon, self.location.crs)


def _names(name: str, aliases: Iterable[str], *, district: bool = False) -> list[str]:
    names = [name, *aliases]
    if district:
        for suffix in _DISTRICT_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                names.append(name[: -len(suffix)])
                break
    return [n.translate(_NOISE) for n in names if n.translate(_NOISE)]


class Gazetteer:
    """Cities, districts and landmarks, searchable by the words people type."""

    def __init__(self, cities: Mapping[str, GazetteerCity]) -> None:
        self._cities = dict(cities)

    def cities(self) -> list[GazetteerCity]:
        return list(self._cities.values())

    def district(self, city: str, district: str) -> Place | None:
        """The centre of a district picked from the lists, or None when there is no such one."""
        c = self._cities.get(city)
        d = next((d for d in c.districts if d.name == district), None) if c else None
        if c is None or d is None:
            return None
        return Place(f"{c.name}{d.name}", c.name, d.name, d.center, "district")

    def search(self, query: str) -> Place | None:
        """The best place for a typed address: a landmark, else a district, else a city.

        A landmark or district must lie in the city the query names, when it names one; the
        longest matching name wins (``深圳北站`` over ``深圳``).
        """
        q = query.translate(_NOISE)
        if not q:
            return None
        named_cities = {
            c.name for c in self._cities.values() if any(n in q for n in _names(c.name, c.aliases))
        }
        best: tuple[int, int, Place] | None = None
        for c in self._cities.values():
            if named_cities and c.name not in named_cities:
                continue
            for d in c.districts:
                for place, length, rank in self._matches(c, d, q):
                    if best is None or (rank, length) > (best[0], best[1]):
                        best = (rank, length, place)
        if best is not None:
            return best[2]
        if named_cities:
            c = self._cities[sorted(named_cities)[0]]
            return Place(c.name, c.name, None, c.center, "city")
        return None

    @staticmethod
    def _matches(
        c: GazetteerCity, d: GazetteerDistrict, q: str
    ) -> Iterable[tuple[Place, int, int]]:
        district_hit = max(
            (len(n) for n in _names(d.name, d.aliases, district=True) if n in q), default=0
        )
        if district_hit:
            yield Place(f"{c.name}{d.name}", c.name, d.name, d.center, "district"), district_hit, 1
        for lm in d.landmarks:
            hit = max((len(n) for n in _names(lm.name, lm.aliases) if n in q), default=0)
            if hit:
                # A landmark in the district the query also names beats one elsewhere.
                yield (
                    Place(f"{c.name}{d.name}{lm.name}", c.name, d.name, lm.location, "landmark"),
                    hit + district_hit,
                    2,
                )


class GazetteerGeocoder(Geocoder):
    """A geopy geocoder answering from the offline gazetteer; results are WGS-84."""

    def __init__(self, gazetteer: Gazetteer, *, user_agent: str = "qunfu-entry") -> None:
        super().__init__(user_agent=user_agent)
        self.gazetteer = gazetteer

    def geocode(
        self, query: str, *, exactly_one: bool = True, timeout: Any = None
    ) -> GeoLocation | list[GeoLocation] | None:
        """geopy's ``geocode``: the best gazetteer match, or None."""
        place = self.gazetteer.search(str(query))
        if place is None:
            return None
        lat, lon = place.wgs84()
        raw = {"city": place.city, "district": place.district, "kind": place.kind}
        location = GeoLocation(place.label, (lat, lon, 0.0), raw)
        return location if exactly_one else [location]


def make_geocoder(settings: EntrySettings, gazetteer: Gazetteer) -> Geocoder:
    """The configured geocoder: the offline gazetteer, or a geopy service by name."""
    if settings.geocoder == "gazetteer":
        return GazetteerGeocoder(gazetteer, user_agent=settings.user_agent)
    cls = get_geocoder_for_service(settings.geocoder)
    return cls(user_agent=settings.user_agent, **settings.geocoder_options)
