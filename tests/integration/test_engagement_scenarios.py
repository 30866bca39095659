"""Scenarios of issue 10's member side: 我的邀请 / 邀请排行, a tier congratulation, 退订 /
订阅 and a lottery whose draw `qunfu lottery verify` re-runs. Expectations live beside each
scenario in ``NAME.expected.yaml`` (format described in lottery_draw.expected.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
runner = CliRunner()


def _run(name: str, db: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    result = runner.invoke(
        app, ["simulate", str(SCENARIOS / f"{name}.yaml"), "--json", "--keep-db", str(db)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    expected = yaml.safe_load((SCENARIOS / f"{name}.expected.yaml").read_text(encoding="utf-8"))
    return records, expected


def _check_says(records: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    says = [r for r in records if r["action"] == "say"]
    for want in expected["says"]:
        found = [
            r
            for r in says
            if r["to"] == want["to"]
            and all(fragment in r["text"] for fragment in want["text"])
            and ("mentions" not in want or r["mentions"] == want["mentions"])
        ]
        if "count" in want:
            assert len(found) == want["count"], want
        else:
            assert found, want


def _env(db: Path) -> dict[str, str]:
    return {"QUNFU_DATABASE__URL": f"sqlite:///{db}"}


@pytest.mark.parametrize(
    "name", ["referral_commands", "optout_welcome", "lottery_draw", "chat_help"]
)
def test_members_read_what_the_expectations_say(name: str, tmp_path: Path) -> None:
    records, expected = _run(name, tmp_path / "sim.db")
    _check_says(records, expected)
    if "webhooks" in expected:
        assert [r["status"] for r in records if r["action"] == "webhook"] == expected["webhooks"]


def test_opt_outs_are_recorded_with_their_time(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    _, expected = _run("optout_welcome", db)
    result = runner.invoke(app, ["optouts", "--config", str(CONFIG)], env=_env(db))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [{k: r[k] for k in ("action", "via", "at")} for r in rows] == expected["optouts"]
    assert all("u1" not in r["member"] or r["member"] == "u***" for r in rows)  # masked


def test_lottery_verify_re_runs_the_stored_draw(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    _, expected = _run("lottery_draw", db)
    want = expected["verify"]
    args = ["lottery", "verify", want["campaign"], want["occurrence"], "--config", str(CONFIG)]
    result = runner.invoke(app, args, env=_env(db))
    assert result.exit_code == want["exit"], result.output
    assert "OK" in result.stdout
    winners = next(line for line in result.stdout.splitlines() if line.startswith("sz-nanshan-kjy"))
    assert sorted(winners.split(": ")[1].split(", ")) == ["u1", "u2"]


def test_lottery_verify_reports_a_tampered_result(tmp_path: Path) -> None:
    import sqlalchemy as sa

    db = tmp_path / "sim.db"
    _run("lottery_draw", db)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # someone swaps a winner for the manager after the draw
        conn.execute(sa.text("UPDATE lottery_winner SET person_id = 'wxid_cm_li' WHERE rank = 1"))
    engine.dispose()
    args = ["lottery", "verify", "friday-lottery", "2026-12-04", "--config", str(CONFIG)]
    result = runner.invoke(app, args, env=_env(db))
    assert result.exit_code == 1
    assert "DIFFERENT: sz-nanshan-kjy" in result.stdout and "wxid_cm_li" in result.stdout
