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
from bot.entry.errors import EntryError, not_found
from bot.entry.places import NamedRegions, named_regions, province_of, short_district, short_name
from bot.opsdata.models import GazetteerCity, GazetteerDistrict, Location
from bot.routing import to_wgs84

_DISTRICT_SUFFIXES = ("新区", "区", "县")
ADDRESS_NOT_FOUND = "没有找到这个地址，请换个说法（例如“深圳南山科技园”），或选择城市和区域。"
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
        """The best place for a typed address, or None when :meth:`locate` would refuse it."""
        try:
            return self.locate(query)
        except EntryError:
            return None

    def locate(self, query: str) -> Place:
        """The best place for a typed address: a landmark, else a district, else a city.

        The place lies inside every city, district and province the query names (read with
        cpca, so cities missing from the gazetteer count too); the longest matching name wins
        (``深圳北站`` over ``深圳``). Raises :class:`EntryError` (404) with a Chinese message
        saying why when nothing fits: nothing matched, or the region named is not covered.
        """
        q = query.translate(_NOISE)
        if not q:
            raise not_found("address_not_found", ADDRESS_NOT_FOUND)
        named = named_regions(q)
        named_cities = {
            c.name for c in self._cities.values() if any(n in q for n in _names(c.name, c.aliases))
        }
        best: tuple[int, int, Place] | None = None
        # Every place the best-scoring name could mean: one name, several places is ambiguous.
        tied: list[Place] = []
        best_span = (0, 0)
        for c in self._cities.values():
            if named_cities and c.name not in named_cities:
                continue
            for d in c.districts:
                for place, length, rank, span in self._matches(c, d, q):
                    if not self._fits(place, named, span):
                        continue
                    if best is None or (rank, length) > (best[0], best[1]):
                        best, tied, best_span = (rank, length, place), [place], span
                    elif (rank, length) == (best[0], best[1]) and span == best_span:
                        tied.append(place)
        if best is not None:
            if len({(p.city, p.district) for p in tied}) > 1:
                raise _ambiguous(q[best_span[0] : best_span[1]], tied)
            self._check_rest(q, named, self._cities[best[2].city], best_span)
            return best[2]
        for name in sorted(named_cities):
            c = self._cities[name]
            place = Place(c.name, c.name, None, c.center, "city")
            if self._fits(place, named, (0, 0)):
                self._check_rest(q, named, c, (0, 0))
                return place
        raise self._refusal(named)

    def _check_rest(
        self, q: str, named: NamedRegions, city: GazetteerCity, span: tuple[int, int]
    ) -> None:
        """Refuse a place in ``city`` when the rest of the text names a district it lacks.

        cpca reads a district only inside the city named with it, so "上海南山区" names 上海 and
        no district; read alone, the rest of the text (without the city and the matched name
        ``span``) names 南山区, which 上海 does not have. The person said where they are, and it
        is not the place found: say so instead of guessing ("深圳朝阳区国贸" is not 深圳's 国贸).
        """
        if named.city is None or named.district is not None:
            return  # no city named, or a district cpca read within it: checked by _fits
        cut = sorted([(named.city.start, named.city.end), span])
        rest = q[: cut[0][0]] + " " + q[cut[0][1] : cut[1][0]] + " " + q[cut[1][1] :]
        district = named_regions(rest.strip()).district
        if district is None:
            return
        wanted = short_district(district.name)
        known = (short_district(n) for d in city.districts for n in (d.name, *d.aliases))
        if wanted not in set(known):
            raise self._refusal(NamedRegions(named.province, named.city, district))

    def _fits(self, place: Place, named: NamedRegions, span: tuple[int, int]) -> bool:
        """Whether ``place`` lies in every region the query names outside the matched ``span``.

        A mention inside the matched name does not count: ``北京路`` is a street in 广州.
        """
        city = self._cities[place.city]
        if named.city is not None and not named.city.inside(*span):
            wanted = short_name(named.city.name)
            if wanted not in {short_name(n) for n in (city.name, *city.aliases)}:
                return False
        if named.district is not None and not named.district.inside(*span):
            d = next((d for d in city.districts if d.name == place.district), None)
            wanted = short_district(named.district.name)
            if d is None or wanted not in {short_district(n) for n in (d.name, *d.aliases)}:
                return False
        if named.province is not None and not named.province.inside(*span):
            province = province_of(city.name)
            if province is not None and province != named.province.name:
                return False
        return True

    def _refusal(self, named: NamedRegions) -> EntryError:
        """Why an address was not placed, in words the person can act on."""
        covered = "、".join(c.name for c in self._cities.values())
        city = self._city_named(named)
        if named.city is not None and city is None:
            return not_found(
                "city_not_covered",
                f"地名库里还没有{short_name(named.city.name)}，无法按地址定位到那里"
                f"（目前支持：{covered}）。请改用定位，或选择城市和区域。",
            )
        if named.district is not None:
            where = f"在{city.name}" if city is not None else "地名库里"
            return not_found(
                "district_not_found",
                f"{where}没有找到「{named.district.name}」（目前支持：{covered}）。"
                "请检查地址，或改用定位、选择城市和区域。",
            )
        if named.province is not None and city is None:
            return not_found(
                "province_not_covered",
                f"地名库里还没有{short_name(named.province.name)}的城市（目前支持：{covered}）。"
                "请改用定位，或选择城市和区域。",
            )
        return not_found("address_not_found", ADDRESS_NOT_FOUND)

    def _city_named(self, named: NamedRegions) -> GazetteerCity | None:
        if named.city is None:
            return None
        wanted = short_name(named.city.name)
        return next(
            (
                c
                for c in self._cities.values()
                if wanted in {short_name(n) for n in (c.name, *c.aliases)}
            ),
            None,
        )

    @staticmethod
    def _matches(
        c: GazetteerCity, d: GazetteerDistrict, q: str
    ) -> Iterable[tuple[Place, int, int, tuple[int, int]]]:
        district_names = [n for n in _names(d.name, d.aliases, district=True) if n in q]
        district_hit = max((len(n) for n in district_names), default=0)
        if district_hit:
            name = max(district_names, key=len)
            place = Place(f"{c.name}{d.name}", c.name, d.name, d.center, "district")
            yield place, district_hit, 1, _span(q, name)
        for lm in d.landmarks:
            names = [n for n in _names(lm.name, lm.aliases) if n in q]
            if names:
                name = max(names, key=len)
                # A landmark in the district the query also names beats one elsewhere.
                yield (
                    Place(f"{c.name}{d.name}{lm.name}", c.name, d.name, lm.location, "landmark"),
                    len(name) + district_hit,
                    2,
                    _span(q, name),
                )


def _ambiguous(name: str, places: list[Place]) -> EntryError:
    """One name, several places in the gazetteer, and nothing in the text to choose between them."""
    where = "、".join(dict.fromkeys(f"{p.city}{p.district or ''}" for p in places))
    first = places[0]
    if len({p.city for p in places}) == 1:
        # All in one city (written or not): the district is what tells them apart.
        example = f"{first.city}{first.district or ''}{name}"
        ask = "请写上区域"
    else:
        example = f"{first.city}{name}"
        ask = "请写上城市或区域"
    return not_found(
        "address_ambiguous",
        f"「{name}」在地名库里有多处（{where}），无法确定是哪一个。"
        f"{ask}，例如“{example}”，或改用定位。",
    )


def _span(q: str, name: str) -> tuple[int, int]:
    start = q.find(name)
    return start, start + len(name)


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
