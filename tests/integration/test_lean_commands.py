"""`qunfu preview` and `qunfu route` pay only for what they use (issue 8, fast ops loading):
no template check of every campaign, no warnings, `route` builds no merchant neighbourhoods and
renders nothing, `preview --group` measures only its group's merchants."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import bot.app
from bot.cli import app
from bot.routing import MerchantNeighbourhoods
from bot.templating import TemplateRenderer
from tests.support import ROOT

runner = CliRunner()
CONFIG = str(ROOT / "config.yaml")


def _refuse(what: str):  # noqa: ANN202
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{what} was not to run")

    return refuse


def preview_rows(*args: str) -> list[dict]:
    result = runner.invoke(app, ["preview", "--config", CONFIG, "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_preview_and_route_run_no_template_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.app, "check_templates", _refuse("the template check"))
    assert preview_rows("--from", "2026-12-02")
    result = runner.invoke(app, ["route", "--config", CONFIG, "--lat", "22.54", "--lon", "113.93"])
    assert result.exit_code == 0, result.output


def test_route_builds_no_neighbourhoods_and_renders_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MerchantNeighbourhoods, "__init__", _refuse("merchant neighbourhoods"))
    monkeypatch.setattr(TemplateRenderer, "render", _refuse("rendering"))
    result = runner.invoke(
        app, ["route", "--config", CONFIG, "--lat", "22.54", "--lon", "113.93", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["group"]


def test_preview_of_one_group_measures_only_that_group(monkeypatch: pytest.MonkeyPatch) -> None:
    full = preview_rows("--from", "2026-12-01", "--days", "3")
    built: list[int] = []
    original = MerchantNeighbourhoods.__init__

    def counting(self, groups, merchants, radius_m) -> None:  # noqa: ANN001
        groups = list(groups)
        built.append(len(groups))
        original(self, groups, merchants, radius_m)

    monkeypatch.setattr(MerchantNeighbourhoods, "__init__", counting)
    for group in ("sz-nanshan-kjy", "sh-xuhui-xjh"):
        alone = preview_rows("--from", "2026-12-01", "--days", "3", "--group", group)
        assert alone == [r for r in full if r["group"] == group]  # times, texts, accounts
        assert alone
    assert built and max(built) == 0  # no group's neighbourhood computed ahead


def test_validating_a_lottery_campaign_does_not_import_the_database_layer() -> None:
    code = (
        "import sys\n"
        "from bot.opsdata.models import Campaign\n"
        "Campaign.model_validate({'id': 'l', 'name': 'n', 'kind': 'lottery', 'template': 't',"
        " 'schedule': {'at': '10:00'}, 'data': {'keyword': '抽奖', 'draw_at': '2h'}})\n"
        "print('bot.lottery.service' in sys.modules, 'sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
