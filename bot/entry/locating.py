"""Typed address → point, the one way: the entry page, the private chat and ``qunfu route``.

With the offline gazetteer (the default) the gazetteer places the address itself, inside the
city it names or not at all. With an online geopy geocoder the answer is checked the same way:
a result whose address names another city than the query is refused, never offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from geopy.exc import GeopyError
from geopy.geocoders.base import Geocoder
from loguru import logger

from bot.entry.errors import EntryError, not_found
from bot.entry.geocoding import ADDRESS_NOT_FOUND, GazetteerGeocoder
from bot.entry.places import city_in, named_regions, short_name


@dataclass(frozen=True)
class LocatedAddress:
    """Where an address was placed: a point in ``crs``, a label, and its city/district if known."""

    lat: float
    lon: float
    crs: str
    label: str
    city: str | None
    district: str | None


def locate_address(geocoder: Geocoder, address: str, *, crs: str = "wgs84") -> LocatedAddress:
    """Place ``address`` with ``geocoder`` (``crs``: what an online geocoder answers in).

    Blocking (an online geocoder makes a request): call it off the event loop. Raises
    :class:`EntryError` with a Chinese message: 404 when the address cannot be placed, or names
    a city it would not land in; 503 when the geocoding service fails.
    """
    if isinstance(geocoder, GazetteerGeocoder):
        place = geocoder.gazetteer.locate(address)
        lat, lon = place.wgs84()
        return LocatedAddress(lat, lon, "wgs84", place.label, place.city, place.district)
    try:
        found = geocoder.geocode(address, exactly_one=True)
    except GeopyError as exc:
        # The error text may quote the request URL, i.e. the address typed: log the kind only.
        logger.bind(error=type(exc).__name__).warning("entry: geocoder failed")
        raise EntryError(
            503,
            "geocoder_unavailable",
            "地址解析服务暂时不可用，请选择城市和区域，或稍后再试。",
        ) from exc
    if found is None:
        raise not_found("address_not_found", ADDRESS_NOT_FOUND)
    label = str(found.address)
    asked = named_regions(address).city
    answered = city_in(label)
    if asked is not None and answered is not None and asked.name != answered:
        raise not_found(
            "address_elsewhere",
            f"这个地址被定位到了{short_name(answered)}，不在您写的{short_name(asked.name)}。"
            "请把地址写得更具体一些，或改用定位、选择城市和区域。",
        )
    return LocatedAddress(float(found.latitude), float(found.longitude), crs, label, None, None)
