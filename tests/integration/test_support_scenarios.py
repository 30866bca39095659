"""The ticket loop end to end through `qunfu simulate`, with the virtual clock.

Each scenario's expectations live beside it (``<name>.expected.yaml``): the sends that must
happen, in order, with what their text must contain; strings no send may contain; and how many
sends contain a string.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from bot.cli import app

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
runner = CliRunner()


def simulate(name: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["simulate", str(SCENARIOS / name), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _matches(record: dict[str, Any], want: dict[str, Any]) -> bool:
    at = datetime.fromisoformat(record["at"])
    return (
        record.get("action") == "say"
        and record["to"] == want["to"]
        and all(h in record["text"] for h in want["has"])
        and ("mentions" not in want or record["mentions"] == want["mentions"])
        and ("after" not in want or at >= datetime.fromisoformat(want["after"]))
        and ("before" not in want or at <= datetime.fromisoformat(want["before"]))
    )


@pytest.mark.parametrize(
    "name",
    [
        "ticket_loop",
        "ticket_sla",
        "ticket_hours",
        "ticket_sensitive",
        "ticket_left",
        "ticket_nobody",
    ],
)
def test_support_scenario_does_what_its_expectations_say(name: str) -> None:
    expected = YAML(typ="safe").load((SCENARIOS / f"{name}.expected.yaml").read_text("utf-8"))
    records = simulate(f"{name}.yaml")
    says = [r for r in records if r.get("action") == "say"]
    shown = "\n".join(f"{r['at']} {r['to']} {r['text']!r} {r['mentions']}" for r in says)
    position = 0
    for want in expected.get("sends", []):
        found = next((i for i in range(position, len(says)) if _matches(says[i], want)), None)
        assert found is not None, f"missing after send {position}: {want}\n{shown}"
        position = found + 1
    for text in expected.get("never", []):
        assert not any(text in r["text"] for r in says), f"{text!r} was sent\n{shown}"
    for rule in expected.get("count", []):
        n = sum(rule["has"] in r["text"] for r in says)
        assert n == rule["n"], f"{rule}: {n}\n{shown}"


def test_audit_of_a_group_keeps_the_managers_ticket_commands_about_it(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    played = runner.invoke(
        app, ["simulate", str(SCENARIOS / "ticket_loop.yaml"), "--json", "--keep-db", str(db)]
    )
    assert played.exit_code == 0, played.output
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    result = runner.invoke(
        app, ["audit", "--config", str(config), "--json", "--group", "sz-nanshan-kjy"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    commands = [r for r in rows if r["reason"] == "command:tickets"]
    texts = [r["text"] for r in commands]
    # Closing #1, closing it again, a reply to it once closed, a reply by someone else.
    assert any("工单 #1 已关闭。" in t for t in texts), texts
    assert any("之前已经关闭" in t for t in texts) and any("无法再回复" in t for t in texts)
    assert any(r["to"] == "contact:wxid_cm_wang" and "不是转给您的" in r["text"] for r in commands)
    assert all(r["group"] == "sz-nanshan-kjy" for r in rows)
    # The 工单 list (any group), the help text and an unknown number belong to no group.
    assert not any("您有 1 个" in t or "没有找到工单" in t or "回复工单请用" in t for t in texts)
