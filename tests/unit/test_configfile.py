"""config.yaml: validated with positions; `qunfu check` gathers every problem."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.configfile import check_all, load_settings
from bot.opsdata import OpsDataError, Problem

FIXTURES = Path(__file__).parent.parent / "fixtures" / "opsdata"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def no_qunfu_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("QUNFU_"):
            monkeypatch.delenv(name)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A folder with config.yaml beside copies of the fixture campaigns and templates."""
    shutil.copytree(FIXTURES / "campaigns", tmp_path / "campaigns")
    shutil.copytree(FIXTURES / "templates", tmp_path / "templates")
    config = tmp_path / "config.yaml"
    config.write_text("gateway: simulator\noutbox:\n  rate_per_minute: 30\n", encoding="utf-8")
    return config


def config_problems(path: Path) -> list[str]:
    with pytest.raises(OpsDataError) as info:
        load_settings(path)
    return [f"{p.path.name}:{p.line}:{p.col}: {p.message}" for p in info.value.problems]


def errors(config: Path) -> list[Problem]:
    """What `qunfu check` reports as errors (warnings about the fixtures are tested elsewhere)."""
    return [p for p in check_all(config, NOW) if not p.is_warning]


def test_relative_folders_resolve_beside_config(deployment: Path) -> None:
    settings = load_settings(deployment)
    assert settings.campaigns_dir == (deployment.parent / "campaigns").resolve()
    assert settings.outbox.rate_per_minute == 30


def test_unknown_key_with_suggestion(deployment: Path) -> None:
    deployment.write_text("outbox:\n  rate_per_minut: 3\n  jitter: 3x\n", encoding="utf-8")
    assert config_problems(deployment) == [
        "config.yaml:2:3: unknown key 'rate_per_minut' (did you mean 'rate_per_minute'?)",
        "config.yaml:3:11: expected a duration such as 20m or 3h30m, got '3x'",
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    assert config_problems(tmp_path / "config.yaml") == ["config.yaml:1:1: config file not found"]


def test_bad_environment_value_has_no_file_position(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUNFU_OUTBOX__RATE_PER_MINUTE", "fast")
    with pytest.raises(OpsDataError) as info:
        load_settings(deployment)
    (p,) = info.value.problems
    assert str(p) == "<env>:0:0: QUNFU_OUTBOX__RATE_PER_MINUTE: expected a number, got 'fast'"


def test_check_all_is_clean_for_the_fixtures(deployment: Path) -> None:
    assert errors(deployment) == []


def test_check_all_goes_on_past_config_problems(deployment: Path) -> None:
    deployment.write_text("gatway: simulator\n", encoding="utf-8")
    (deployment.parent / "templates" / "meal.j2").write_text("{{ nope }}", encoding="utf-8")
    config, template = errors(deployment)
    assert config.message == "unknown key 'gatway' (did you mean 'gateway'?)"
    assert (template.path.name, template.line) == ("meal.j2", 1) and "nope" in template.message


def test_check_all_reports_ops_data_then_templates(deployment: Path) -> None:
    root = deployment.parent
    (root / "templates" / "meal.j2").write_text("{{ group.nme }}", encoding="utf-8")
    deployment.write_text("welcome: {campaign: welcom}\n", encoding="utf-8")
    found = [(p.path.name, p.line, p.message) for p in errors(deployment)]
    assert found[0] == ("config.yaml", 1, "unknown campaign 'welcom' (did you mean 'welcome'?)")
    ((name, line, message),) = found[1:]
    assert (name, line) == ("meal.j2", 1) and "'nme'" in message and "lunch-deals" in message
    (root / "campaigns" / "lunch-deals.yaml").write_text("id: x\nkind: meal\n", encoding="utf-8")
    messages = [p.message for p in errors(deployment)]
    assert messages[:3] == [
        "unknown campaign 'welcom' (did you mean 'welcome'?)",
        "missing key 'name'",
        "missing key 'template'",
    ]


def test_environment_overrides_the_file_and_keeps_the_rest(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.write_text(
        "outbox:\n  rate_per_minute: 30\n  grace: 2h\ndatabase:\n  url: sqlite:///var/a.db\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("QUNFU_OUTBOX__RATE_PER_MINUTE", "7")
    monkeypatch.setenv("QUNFU_DATABASE__URL", "postgresql+psycopg://qunfu@db/qunfu")
    settings = load_settings(deployment)
    assert settings.outbox.rate_per_minute == 7
    assert settings.outbox.grace.total_seconds() == 7200
    assert settings.database.url == "postgresql+psycopg://qunfu@db/qunfu"


def test_a_relative_sqlite_path_resolves_beside_the_config(deployment: Path) -> None:
    deployment.write_text("database:\n  url: sqlite:///var/a.db\n", encoding="utf-8")
    settings = load_settings(deployment)
    assert settings.database.url == f"sqlite:///{(deployment.parent / 'var' / 'a.db').resolve()}"
