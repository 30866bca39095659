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
    "name", ["ticket_loop", "ticket_sla", "ticket_hours", "ticket_sensitive", "ticket_left"]
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
