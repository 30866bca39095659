"""Which province, city and district a typed address names, read with cpca.

cpca knows every Chinese province, prefecture-level city and county-level district (from the
national administrative division codes), so "北京朝阳区国贸" is known to name 北京 and 朝阳区
even though the offline gazetteer has no 北京. The geocoder uses this to keep an address inside
the city it names: a place found elsewhere is refused instead of offered (docs/entry.md).

Only names written in the text count. cpca also infers the city of a bare district ("南山区" →
深圳市), but district names repeat across China (朝阳区 is in 北京 and in 长春), so an inferred
city is never treated as named.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

# Province-level cities: cpca files them as provinces, people call them cities.
_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市", "香港特别行政区", "澳门特别行政区")
_STOP = re.compile(r"(省|市|特别行政区|自治区|维吾尔自治区|壮族自治区|回族自治区)$")
_COUNTY_SUFFIX = re.compile(r"(新区|区|县|市|旗)$")


@dataclass(frozen=True)
class NamedRegion:
    """A region written in the text: its official name and where it stands in the text."""

    name: str
    start: int
    end: int

    def inside(self, start: int, end: int) -> bool:
        """Whether this mention lies within ``text[start:end]`` (a longer name that holds it)."""
        return start <= self.start and self.end <= end


@dataclass(frozen=True)
class NamedRegions:
    """The province, city and district a text names (None for a level it does not name)."""

    province: NamedRegion | None = None
    city: NamedRegion | None = None
    district: NamedRegion | None = None

    def __bool__(self) -> bool:
        return any((self.province, self.city, self.district))


def short_name(name: str) -> str:
    """A city or province name as people say it: ``深圳市`` → ``深圳``, ``广东省`` → ``广东``."""
    stripped = _STOP.sub("", name)
    return stripped if len(stripped) >= 2 else name


def short_district(name: str) -> str:
    """A district name without its suffix: ``南山区`` → ``南山``, ``浦东新区`` → ``浦东``."""
    stripped = _COUNTY_SUFFIX.sub("", name)
    return stripped if len(stripped) >= 2 else name


@functools.cache
def _cpca() -> Any:
    # cpca loads its tables (and pandas) at import: once, and only when an address is read.
    import cpca

    return cpca


def _mention(text: str, name: object, pos: object) -> NamedRegion | None:
    if not isinstance(name, str) or not name or name == "市辖区":
        return None
    try:
        at = int(pos)  # type: ignore[call-overload]  # numpy integers from the DataFrame
    except (TypeError, ValueError):
        return None
    if at < 0:
        return None
    for written in (name, short_name(name), short_district(name)):
        if text.startswith(written, at):
            return NamedRegion(name, at, at + len(written))
    return NamedRegion(name, at, at + len(short_name(name)))


def named_regions(text: str) -> NamedRegions:
    """The regions ``text`` names in words, with their positions in ``text``."""
    if not text:
        return NamedRegions()
    row = _cpca().transform([text], pos_sensitive=True).iloc[0].to_dict()
    province = _mention(text, row.get("省"), row.get("省_pos"))
    city = _mention(text, row.get("市"), row.get("市_pos"))
    if city is None and province is not None and province.name in _MUNICIPALITIES:
        province, city = None, province  # 北京 names a city, not only a province
    district = _mention(text, row.get("区"), row.get("区_pos"))
    return NamedRegions(province, city, district)


def city_in(text: str) -> str | None:
    """The city a geocoder's answer lies in, inferred from its district if need be.

    For an answer (``国贸, 罗湖区, 深圳市, ...``), not for a query: there, a bare district's city
    is a guess (see the module docstring).
    """
    if not text:
        return None
    row = _cpca().transform([text]).iloc[0].to_dict()
    province, city = row.get("省"), row.get("市")
    if isinstance(province, str) and province in _MUNICIPALITIES:
        return province
    return city if isinstance(city, str) and city != "市辖区" else None


@functools.cache
def province_of(city: str) -> str | None:
    """The official province of a city known by its usual name (``深圳`` → ``广东省``)."""
    row = _cpca().transform([city]).iloc[0].to_dict()
    province = row.get("省")
    return province if isinstance(province, str) and province not in _MUNICIPALITIES else None
