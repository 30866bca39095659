"""Referral events end to end: the scenario webhook steps, the HTTP endpoint, the CSV import and
the review / export commands, on the real app and database."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from bot.cli import app
from bot.configfile import load_settings
from bot.entry.referral_codes import ReferralCodes, referral_secret
from db.entry_repositories import ReferralCodeRepo
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
runner = CliRunner()
_yaml = YAML(typ="safe")


def read_yaml(path: Path) -> dict:
    return _yaml.load(path.read_text(encoding="utf-8"))


def test_webhook_steps_get_the_statuses_written_beside_the_scenario() -> None:
    expected = read_yaml(SCENARIOS / "referral_webhook.expected.yaml")
    result = runner.invoke(app, ["simulate", str(SCENARIOS / "referral_webhook.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    hooks = [r for r in records if r["action"] == "webhook"]
    assert [h["status"] for h in hooks] == expected["statuses"]
    assert set(hooks[0]) == {"at", "action", "path", "status"}
    assert hooks[0]["path"] == "/webhooks/referral-events"


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """config.yaml of the repo, on a test database; one referral code issued to m1."""
    data = read_yaml(ROOT / "config.yaml")
    data["database"] = {"url": db_url}
    data["campaigns_dir"] = str(ROOT / "campaigns")
    data["templates_dir"] = str(ROOT / "templates")
    data["simulator"]["demo"] = None
    path = tmp_path / "config.yaml"
    with path.open("w", encoding="utf-8") as f:
        _yaml.dump(data, f)
    return path


def issue_code(config: Path, person: str) -> str:
    settings = load_settings(config)
    upgrade(settings.database.url)
    engine = make_engine(settings.database.url)
    try:
        codes = ReferralCodes(ReferralCodeRepo(engine), referral_secret(settings))
        return codes.issue(person, datetime(2026, 12, 1, tzinfo=SHANGHAI))
    finally:
        engine.dispose()


def test_import_takes_good_rows_lists_bad_ones_and_review_export_follow(
    config: Path, tmp_path: Path
) -> None:
    code = issue_code(config, "m1")
    rows = [
        "event_id,type,referral_code,applicant,occurred_at,referrer_applicant",
        f"ev-1,application_approved,{code},h1,2026-12-01T09:00:00+08:00,",
        f"ev-2,application_approved,{code},h2,2026-12-01T09:10:00+08:00,",
        f"ev-3,card_shipped,{code},h3,2026-12-01T09:20:00+08:00,",
        "ev-4,application_approved,ZZZZZZZZ-ZZZZZZZZ,h4,2026-12-01T09:30:00+08:00,",
        f"ev-5,application_approved,{code},h5,yesterday,",
        f"ev-6,application_approved,{code},h6,2026-12-01T09:40:00+08:00,",
        f"ev-7,application_approved,{code},h7,2026-12-01T09:50:00+08:00,",
        f"ev-8,application_approved,{code},me,2026-12-01T09:55:00+08:00,me",
    ]
    file = tmp_path / "events.csv"
    file.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["referrals", "import", str(file), "-c", str(config)])
    assert result.exit_code == 1  # bad rows make the run fail, after the good ones went in
    assert f"{file}:4: type:" in result.stdout
    assert f"{file}:5: referral_code:" in result.stdout
    assert f"{file}:6: occurred_at:" in result.stdout
    assert "5 imported (4 counted, 2 tier(s) granted)" in result.output

    again = runner.invoke(app, ["referrals", "import", str(file), "-c", str(config)])
    assert "0 imported" in again.output and "5 already known" in again.output

    # Four friends within an hour (burst_count 5 is the default; 4 is not a burst): tiers 1
    # and 3 are payable.
    review = runner.invoke(app, ["rewards", "review", "-c", str(config), "--json"])
    assert review.exit_code == 0 and review.stdout.strip() == ""
    out = tmp_path / "rewards.csv"
    export = runner.invoke(
        app,
        [
            "rewards",
            "export",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-01",
            "-o",
            str(out),
            "--mark-sent",
            "--by",
            "ops-li",
            "-c",
            str(config),
        ],
    )
    assert export.exit_code == 0, export.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("reward_id,referrer,tier,reward,status")
    assert [line.split(",")[2] for line in lines[1:]] == ["1", "3"]
    history = runner.invoke(app, ["rewards", "history", "1", "-c", str(config)])
    assert "pending → sent" in history.stdout and "ops-li" in history.stdout
    confirm = runner.invoke(app, ["rewards", "confirm", "1", "--by", "bank", "-c", str(config)])
    assert confirm.exit_code == 0 and "#1: confirmed" in confirm.stdout


def test_a_burst_is_held_and_a_reviewer_decides(config: Path, tmp_path: Path) -> None:
    code = issue_code(config, "m1")
    rows = ["event_id,type,referral_code,applicant,occurred_at"] + [
        f"ev-{i},application_approved,{code},h{i},2026-12-01T09:{10 * i:02d}:00+08:00"
        for i in range(5)
    ]
    file = tmp_path / "burst.csv"
    file.write_text("\n".join(rows) + "\n")
    assert runner.invoke(app, ["referrals", "import", str(file), "-c", str(config)]).exit_code == 0
    review = runner.invoke(app, ["rewards", "review", "-c", str(config), "--json"])
    held = [json.loads(line) for line in review.stdout.splitlines()]
    assert [h["tier"] for h in held] == [1, 3, 5] and "burst" in held[0]["reason"]
    ok = runner.invoke(
        app, ["rewards", "approve", str(held[0]["id"]), "--by", "ops-wang", "-c", str(config)]
    )
    assert ok.exit_code == 0 and "pending" in ok.stdout and "ops-wang" in ok.stdout
    no_reason = runner.invoke(app, ["rewards", "reject", str(held[1]["id"]), "-c", str(config)])
    assert no_reason.exit_code != 0
    rejected = runner.invoke(
        app,
        [
            "rewards",
            "reject",
            str(held[1]["id"]),
            "--why",
            "设备相同",
            "--by",
            "ops-wang",
            "-c",
            str(config),
        ],
    )
    assert rejected.exit_code == 0 and "rejected" in rejected.stdout
    twice = runner.invoke(app, ["rewards", "approve", str(held[1]["id"]), "-c", str(config)])
    assert twice.exit_code == 1 and "rejected" in twice.output
