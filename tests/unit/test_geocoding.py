"""The offline gazetteer geocoder and how the configured geocoder is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from geopy.distance import geodesic
from geopy.geocoders import Nominatim
from geopy.geocoders.base import Geocoder
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import EntrySettings
from bot.entry.errors import EntryError
from bot.entry.geocoding import Gazetteer, GazetteerGeocoder, make_geocoder
from bot.entry.locating import locate_address
from bot.entry.overflow import grid_area
from bot.opsdata.loader import load_opsdata
from bot.opsdata.models import GazetteerCity
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


# --- an address stays inside the city it names ------------------------------------------------


def _refusal(gazetteer: Gazetteer, query: str) -> EntryError:
    with pytest.raises(EntryError) as info:
        gazetteer.locate(query)
    assert info.value.status == 404
    return info.value


def test_an_address_in_a_city_the_gazetteer_lacks_is_refused_not_moved(
    gazetteer: Gazetteer,
) -> None:
    # Observed: "北京朝阳区国贸" was placed at 深圳罗湖区国贸, and a Shenzhen group offered.
    err = _refusal(gazetteer, "北京朝阳区国贸")
    assert err.code == "city_not_covered"
    assert "北京" in err.message and "深圳、广州、上海" in err.message
    assert GazetteerGeocoder(gazetteer).geocode("北京朝阳区国贸") is None


def test_a_city_alone_is_its_centre_or_a_clear_refusal(gazetteer: Gazetteer) -> None:
    place = gazetteer.locate("广州市")
    assert (place.label, place.kind) == ("广州", "city")
    err = _refusal(gazetteer, "北京")
    assert err.code == "city_not_covered" and "北京" in err.message


def test_a_district_alone_is_placed_in_its_city_or_refused(gazetteer: Gazetteer) -> None:
    place = gazetteer.locate("南山区")
    assert (place.city, place.district, place.kind) == ("深圳", "南山区", "district")
    # 朝阳区 is in 北京 (and 长春), never in 深圳: its 国贸 is not 深圳's 国贸.
    err = _refusal(gazetteer, "朝阳区国贸")
    assert err.code == "district_not_found" and "朝阳区" in err.message


def test_a_named_district_beats_a_landmark_elsewhere_in_the_city(gazetteer: Gazetteer) -> None:
    place = gazetteer.locate("南山区国贸")
    assert (place.city, place.district) == ("深圳", "南山区")


def test_a_province_with_no_covered_city_is_refused(gazetteer: Gazetteer) -> None:
    assert _refusal(gazetteer, "浙江国贸").code == "province_not_covered"
    place = gazetteer.locate("广东省深圳市罗湖区国贸")
    assert place.label == "深圳罗湖区国贸"


def test_a_city_name_inside_a_street_name_is_not_that_city(gazetteer: Gazetteer) -> None:
    place = gazetteer.locate("北京路")  # a street in 广州越秀区, not the city 北京
    assert (place.city, place.district) == ("广州", "越秀区")


@settings(max_examples=60, deadline=None)
@given(
    city=st.sampled_from(["北京", "杭州", "成都", "武汉", "南京市", "天津"]),
    rest=st.sampled_from(["", "国贸", "科技园", "朝阳区国贸", "东门", "体育中心", "陆家嘴"]),
)
def test_no_address_naming_an_uncovered_city_is_placed_anywhere(
    gazetteer: Gazetteer, city: str, rest: str
) -> None:
    with pytest.raises(EntryError):
        gazetteer.locate(city + rest)


@settings(max_examples=60, deadline=None)
@given(
    city=st.sampled_from(["深圳", "广州", "上海"]),
    rest=st.sampled_from(["", "国贸", "科技园", "东门", "体育中心", "陆家嘴", "北京路", "徐家汇"]),
)
def test_an_address_naming_a_covered_city_lands_in_it(
    gazetteer: Gazetteer, city: str, rest: str
) -> None:
    assert gazetteer.locate(city + rest).city == city


def test_locate_address_is_the_same_for_every_caller(gazetteer: Gazetteer) -> None:
    found = locate_address(GazetteerGeocoder(gazetteer), "深圳南山科技园")
    assert (found.city, found.district, found.crs) == ("深圳", "南山区", "wgs84")
    with pytest.raises(EntryError, match="北京"):
        locate_address(GazetteerGeocoder(gazetteer), "北京朝阳区国贸")


class _Elsewhere(Geocoder):
    """An online geocoder that places everything in 深圳 (as a poor service might)."""

    def geocode(self, query: str, *, exactly_one: bool = True, timeout: object = None):  # noqa: ANN201
        from geopy.location import Location as GeoLocation

        return GeoLocation("国贸, 罗湖区, 深圳市, 广东省, 中国", (22.54, 114.12, 0.0), {})


def test_an_online_answer_in_another_city_is_refused() -> None:
    with pytest.raises(EntryError) as info:
        locate_address(_Elsewhere(), "北京朝阳区国贸")
    assert info.value.code == "address_elsewhere" and "北京" in info.value.message
    assert locate_address(_Elsewhere(), "深圳国贸").lat == 22.54


# --- one name in several places; a district the named city does not have ----------------------


def _with_wanda(gazetteer: Gazetteer) -> Gazetteer:
    """The shipped gazetteer plus a 万达广场 in 深圳罗湖区 and one in 上海黄浦区."""
    from bot.opsdata.models import Landmark

    def add(city: GazetteerCity, district: str, lat: float, lon: float) -> GazetteerCity:
        districts = [
            d.model_copy(
                update={
                    "landmarks": [
                        *d.landmarks,
                        Landmark(
                            name="万达广场", aliases=["万达"], location={"lat": lat, "lon": lon}
                        ),
                    ]
                }
            )
            if d.name == district
            else d
            for d in city.districts
        ]
        return city.model_copy(update={"districts": districts})

    cities = {c.name: c for c in gazetteer.cities()}
    cities["深圳"] = add(cities["深圳"], "罗湖区", 22.5450, 114.1200)
    cities["上海"] = add(cities["上海"], "黄浦区", 31.2310, 121.4740)
    return Gazetteer(cities)


@pytest.mark.parametrize("query", ["万达", "万达广场", " 万达广场 "])
def test_a_name_in_several_cities_is_refused_not_guessed(gazetteer: Gazetteer, query: str) -> None:
    # Before: the first city listed won, so a person in 上海 was sent to a 深圳 group.
    err = _refusal(_with_wanda(gazetteer), query)
    assert err.code == "address_ambiguous"
    assert "深圳罗湖区" in err.message and "上海黄浦区" in err.message
    assert GazetteerGeocoder(_with_wanda(gazetteer)).geocode(query) is None


@pytest.mark.parametrize(
    ("query", "city"),
    [
        ("上海万达", "上海"),
        ("上海市黄浦区万达广场", "上海"),
        ("罗湖万达", "深圳"),
        ("深圳万达广场", "深圳"),
    ],
)
def test_a_name_in_several_cities_is_placed_by_the_city_or_district_written(
    gazetteer: Gazetteer, query: str, city: str
) -> None:
    place = _with_wanda(gazetteer).locate(query)
    assert (place.city, place.kind) == (city, "landmark")


def test_two_places_of_one_name_in_the_city_written_ask_for_the_district(
    gazetteer: Gazetteer,
) -> None:
    # Observed: "深圳万达广场" with a 万达广场 in 南山区 and one in 罗湖区 was refused with
    # "请写上城市或区域，例如“深圳万达广场”" — exactly what the person had written.
    two = _with_wanda(gazetteer)
    shenzhen = {c.name: c for c in two.cities()}["深圳"]
    districts = [
        d.model_copy(update={"landmarks": [*d.landmarks, *_wanda_of(two, "深圳", "罗湖区")]})
        if d.name == "南山区"
        else d
        for d in shenzhen.districts
    ]
    cities = {c.name: c for c in two.cities()}
    cities["深圳"] = shenzhen.model_copy(update={"districts": districts})
    err = _refusal(Gazetteer(cities), "深圳万达广场")
    assert err.code == "address_ambiguous"
    assert "请写上区域" in err.message and "深圳南山区万达广场" in err.message
    assert "例如“深圳万达广场”" not in err.message


def _wanda_of(gazetteer: Gazetteer, city: str, district: str) -> list:  # noqa: ANN401
    c = {c.name: c for c in gazetteer.cities()}[city]
    d = next(d for d in c.districts if d.name == district)
    return [lm for lm in d.landmarks if lm.name == "万达广场"]


@pytest.mark.parametrize(
    ("query", "district"),
    [
        ("上海南山区", "南山区"),  # was: 上海's centre, with a group "1408 m" away
        ("深圳市朝阳区", "朝阳区"),  # was: 深圳's centre
        ("深圳朝阳区国贸", "朝阳区"),  # was: 深圳罗湖区国贸, 北京's 朝阳区 ignored
        ("上海 南山区", "南山区"),
    ],
)
def test_a_district_the_named_city_lacks_is_refused(
    gazetteer: Gazetteer, query: str, district: str
) -> None:
    err = _refusal(gazetteer, query)
    assert err.code == "district_not_found" and f"「{district}」" in err.message


def test_every_landmark_written_with_its_city_and_district_lands_on_it(
    gazetteer: Gazetteer,
) -> None:
    for c in gazetteer.cities():
        for d in c.districts:
            for lm in d.landmarks:
                for name in (lm.name, *lm.aliases):
                    for query in (name, c.name + name, c.name + d.name + name, d.name + name):
                        place = gazetteer.locate(query)
                        assert (place.city, place.district) == (c.name, d.name), query
