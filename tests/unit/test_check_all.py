"""`qunfu check` reports every problem in one run: nothing broken hides anything else."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.configfile import check_all

FIXTURE = Path(__file__).parent.parent / "fixtures" / "check-all"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def no_qunfu_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("QUNFU_"):
            monkeypatch.delenv(name)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A copy of the fixture tree; returns its config.yaml."""
    shutil.copytree(FIXTURE, tmp_path / "deploy")
    return tmp_path / "deploy" / "config.yaml"


def errors(config: Path) -> list[tuple[str, int, int, str]]:
    root = config.parent
    return [
        (p.path.relative_to(root).as_posix(), p.line, p.col, p.message)
        for p in check_all(config, NOW)
        if not p.is_warning
    ]


def test_five_mistakes_in_five_places_are_all_reported_in_one_run(deployment: Path) -> None:
    # See the comments in tests/fixtures/check-all: a misspelt setting in config.yaml, a YAML
    # syntax error in one campaign file, a schema error in the first campaign of a list and a
    # missing template in the second, an undefined variable in the template of a valid campaign.
    found = errors(deployment)
    assert found[:4] == [
        ("config.yaml", 4, 3, "unknown key 'rate_per_minut' (did you mean 'rate_per_minute'?)"),
        (
            "campaigns/broken.yaml",
            3,
            1,
            "this line has no ':' after its key; write it as `key: value`, or, if it continues "
            "the text of the line above, put that text in quotes",
        ),
        (
            "campaigns/more.yaml",
            6,
            11,
            "expected one of welcome, daily, weekly, monthly, holiday, meal, lottery, once, "
            "got 'dayly' (did you mean 'daily'?)",
        ),
        (
            "campaigns/more.yaml",
            13,
            15,
            "template 'mornin.j2' not found in templates/ (did you mean 'morning.j2'?)",
        ),
    ]
    # The wording and column of template problems belong to bot/templating.py.
    (template,) = found[4:]
    assert template[:2] == ("templates/meal.j2", 2) and "merchnts" in template[3]


def test_a_config_that_cannot_be_parsed_still_checks_the_folders_beside_it(
    deployment: Path,
) -> None:
    deployment.write_text("gateway: simulator\noutbox:\n\trate_per_minute: 20\n", "utf-8")
    found = errors(deployment)
    assert found[0][:3] == ("config.yaml", 3, 1) and "tab" in found[0][3]
    assert {f[0] for f in found[1:]} == {
        "campaigns/broken.yaml",
        "campaigns/more.yaml",
        "templates/meal.j2",
    }


def test_a_broken_config_still_names_the_folders_to_check(deployment: Path) -> None:
    root = deployment.parent
    (root / "campaigns").rename(root / "ops")
    deployment.write_text("campaigns_dir: ops\ngatway: simulator\n", "utf-8")
    found = errors(deployment)
    assert found[0][:3] == ("config.yaml", 2, 1)
    assert "ops/broken.yaml" in {f[0] for f in found}


def test_a_broken_welcome_campaign_is_not_also_called_unknown(deployment: Path) -> None:
    deployment.write_text("welcome: {campaign: evening}\n", "utf-8")
    found = errors(deployment)
    assert not any("unknown campaign" in f[3] for f in found)
    assert ("campaigns/more.yaml", 6, 11) in {f[:3] for f in found}
    (deployment.parent / "campaigns" / "lunch.yaml").write_text("id: lunch\nkind: x\n", "utf-8")
    deployment.write_text("welcome: {campaign: lunch}\n", "utf-8")
    assert not any("unknown campaign" in f[3] for f in errors(deployment))
    deployment.write_text("welcome: {campaign: evenin}\n", "utf-8")
    assert errors(deployment)[0] == (
        "config.yaml",
        1,
        21,
        "unknown campaign 'evenin' (did you mean 'evening'?)",
    )


def test_a_missing_config_file_is_the_only_problem(tmp_path: Path) -> None:
    (p,) = check_all(tmp_path / "config.yaml", NOW)
    assert (p.line, p.col, p.message) == (1, 1, "config file not found")


def test_the_shipped_lottery_template_passes_where_no_lottery_campaign_uses_it(
    tmp_path: Path,
) -> None:
    # A lottery template reads its own value, `lottery`; a deployment that has the template
    # but no lottery campaign (yet) must not fail `check` on it.
    root = Path(__file__).resolve().parents[2]
    deploy = tmp_path / "deploy"
    shutil.copytree(root / "campaigns", deploy / "campaigns")
    shutil.copytree(root / "templates", deploy / "templates")
    shutil.copy(root / "config.yaml", deploy / "config.yaml")
    (deploy / "campaigns" / "lottery.yaml").unlink()
    assert errors(deploy / "config.yaml") == []
