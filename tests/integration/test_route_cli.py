"""`qunfu route --address`: the entry page's geocoding, from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.support import ROOT

runner = CliRunner()
CONFIG = str(ROOT / "config.yaml")


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args))


def test_route_by_address_geocodes_as_the_entry_page_does() -> None:
    by_address = invoke("route", "--config", CONFIG, "--address", "深圳南山科技园", "--json")
    assert by_address.exit_code == 0, by_address.output
    by_point = invoke(
        "route", "--config", CONFIG, "--lat", "22.5405", "--lon", "113.9345", "--json"
    )
    rows = json.loads(by_address.stdout)
    assert rows == json.loads(by_point.stdout)  # the gazetteer puts 科技园 at that point
    assert set(rows[0]) == {"group", "name", "distance_m", "members", "capacity"}
    text = invoke("route", "--config", CONFIG, "--address", "深圳南山科技园")
    assert text.exit_code == 0 and "深圳南山区科技园" in text.stdout


def test_route_refuses_an_address_it_cannot_place() -> None:
    # Observed on the entry page: 北京's 国贸 was placed at 深圳's 国贸.
    beijing = invoke("route", "--config", CONFIG, "--address", "北京朝阳区国贸", "--json")
    assert beijing.exit_code == 1
    assert "北京" in beijing.output and beijing.stdout.strip() == ""
    nowhere = invoke("route", "--config", CONFIG, "--address", "火星基地")
    assert nowhere.exit_code == 1 and "没有找到这个地址" in nowhere.output


def test_route_takes_a_point_or_an_address_not_both() -> None:
    both = invoke(
        "route", "--config", CONFIG, "--lat", "22.5", "--lon", "113.9", "--address", "深圳"
    )
    assert both.exit_code == 1
    assert invoke("route", "--config", CONFIG, "--lat", "22.5").exit_code == 1
    assert invoke("route", "--config", CONFIG).exit_code == 1


@pytest.mark.parametrize(
    "lat, lon",
    [("31.2400", "121.4998"), ("22.7205", "114.2475")],
    ids=["within-the-radius", "beyond-it"],
)
def test_route_offers_what_the_private_chat_offers(tmp_path, lat: str, lon: str) -> None:  # noqa: ANN001
    # Observed: route listed 广州海珠琶洲福利群 1,208 km away as the 5th group for 陆家嘴,
    # where the chat and the entry page stop at the radius. All three share GroupIndex.offer.
    import asyncio
    import re

    from bot.simulation import iter_records, simulate

    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"start: 2026-12-01T10:00:00+08:00\nconfig: {CONFIG}\nsteps:\n"
        "  - contact: {id: u1, name: 张三}\n"
        f"  - location: {{from: u1, lat: {lat}, lon: {lon}, crs: gcj02}}\n"
        "  - advance: 1m\n",
        encoding="utf-8",
    )
    said = [r["text"] for r in iter_records(asyncio.run(simulate(scenario)))]
    offered = re.findall(r"^\d+\. (\S+?)（", said[-1], flags=re.MULTILINE)
    routed = invoke("route", "--config", CONFIG, "--lat", lat, "--lon", lon, "--json")
    assert routed.exit_code == 0, routed.output
    rows = json.loads(routed.stdout)
    assert rows and [r["name"] for r in rows] == offered


def test_route_says_when_it_looks_beyond_the_radius() -> None:
    # 龙岗 has no group within 5 km: the nearest with room beyond it, and it says so.
    text = invoke("route", "--config", CONFIG, "--lat", "22.7205", "--lon", "114.2475")
    assert text.exit_code == 0, text.output
    assert "no group within 5000 m has room" in text.stdout
    assert "1. " in text.stdout
    rows = json.loads(
        invoke(
            "route", "--config", CONFIG, "--lat", "22.7205", "--lon", "114.2475", "--json"
        ).stdout
    )
    assert rows and all(5000 < r["distance_m"] <= 50_000 for r in rows)


def test_route_never_offers_a_group_in_another_part_of_the_country() -> None:
    # Observed: a point in 北京 was offered 上海 groups 1,065 km away as "稍远一些的群".
    beijing = ("--lat", "39.9087", "--lon", "116.3975")
    assert json.loads(invoke("route", "--config", CONFIG, *beijing, "--json").stdout) == []
    text = invoke("route", "--config", CONFIG, *beijing)
    assert text.exit_code == 0 and "no group with room within 50000 m" in text.stdout
