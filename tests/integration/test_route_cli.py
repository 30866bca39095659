"""`qunfu route --address`: the entry page's geocoding, from the command line."""

from __future__ import annotations

import json

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
