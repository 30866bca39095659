"""The offline gazetteer geocoder and how the configured geocoder is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from geopy.distance import geodesic
from geopy.geocoders import Nominatim
from geopy.geocoders.base import Geocoder

from bot.config import EntrySettings
from bot.entry.geocoding import Gazetteer, GazetteerGeocoder, make_geocoder
from bot.entry.overflow import grid_area
from bot.opsdata.loader import load_opsdata
from bot.routing import to_wgs84

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer(load_opsdata(ROOT / "campaigns", ROOT / "templates").gazetteer)


@pytest.mark.parametrize(
    ("query", "label", "kind"),
    [
        ("深圳南山科技园", "深圳南山区科技园", "landmark"),
        ("科技园", "深圳南山区科技园", "landmark"),
        ("深大", "深圳南山区深圳大学", "landmark"),
        ("深圳北站", "深圳龙华区深圳北站", "landmark"),  # longest name wins over the city 深圳
        ("广州市 天河区", "广州天河区", "district"),
        ("南山", "深圳南山区", "district"),
        ("浦东张江高科", "上海浦东新区张江", "landmark"),
        ("上海市", "上海", "city"),
    ],
)
def test_typed_addresses_find_the_best_place(
    gazetteer: Gazetteer, query: str, label: str, kind: str
) -> None:
    place = gazetteer.search(query)
    assert place is not None and (place.label, place.kind) == (label, kind)


@pytest.mark.parametrize("query", ["", "   ", "北京朝阳", "<script>alert(1)</script>", "12345"])
def test_unknown_or_empty_queries_find_nothing(gazetteer: Gazetteer, query: str) -> None:
    assert gazetteer.search(query) is None
    assert GazetteerGeocoder(gazetteer).geocode(query) is None


def test_a_named_city_restricts_landmarks_to_it(gazetteer: Gazetteer) -> None:
    # 南京西路 is in 上海; asked together with 深圳 it must not be picked.
    place = gazetteer.search("深圳南京西路")
    assert place is not None and place.city == "深圳"


def test_the_geocoder_is_a_geopy_geocoder_answering_in_wgs84(gazetteer: Gazetteer) -> None:
    geocoder = GazetteerGeocoder(gazetteer)
    assert isinstance(geocoder, Geocoder)
    found = geocoder.geocode("深圳南山科技园")
    assert found is not None and found.address == "深圳南山区科技园"
    assert geodesic((found.latitude, found.longitude), to_wgs84(22.5405, 113.9345)).m < 0.01
    assert found.raw == {"city": "深圳", "district": "南山区", "kind": "landmark"}
    assert isinstance(geocoder.geocode("南山", exactly_one=False), list)


def test_district_pick_gives_its_centre(gazetteer: Gazetteer) -> None:
    place = gazetteer.district("深圳", "福田区")
    assert place is not None and place.kind == "district"
    assert gazetteer.district("深圳", "火星区") is None
    assert gazetteer.district("北京", "朝阳区") is None


def test_the_configured_geocoder_is_built_by_name(gazetteer: Gazetteer) -> None:
    assert isinstance(make_geocoder(EntrySettings(), gazetteer), GazetteerGeocoder)
    online = make_geocoder(EntrySettings(geocoder="nominatim", user_agent="qunfu-test"), gazetteer)
    assert isinstance(online, Nominatim)  # built only; no request is made here
    with pytest.raises(Exception, match="Unknown geocoder"):
        make_geocoder(EntrySettings(geocoder="no-such-service"), gazetteer)


def test_grid_areas_are_about_two_kilometres() -> None:
    a, b = grid_area(22.5401, 113.9301), grid_area(22.5409, 113.9309)
    assert a == b and a.key.startswith("grid:")
    assert grid_area(22.5601, 113.9301) != a
