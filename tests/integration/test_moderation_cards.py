"""Contact cards, link cards and QR images in a group, end to end through `qunfu simulate`
(issue 11, item 4): the message kind travels from the scenario's `say` step through
`MessageReceived.kind` to the moderation detector.

Expectations live beside the scenario (tests/scenarios/moderation/cards.expected.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from bot.cli import app
from bot.simulation import SayStep
from tests.support import assert_transcript_meets

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "moderation" / "cards.yaml"
EXPECTED = SCENARIO.with_name("cards.expected.yaml")
runner = CliRunner()


def test_cards_from_members_are_warned_and_staff_cards_are_not() -> None:
    result = runner.invoke(app, ["simulate", str(SCENARIO), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    expected = YAML(typ="safe").load(EXPECTED.read_text("utf-8"))
    assert_transcript_meets(records, expected)


def test_say_step_kind_defaults_to_text_and_text_stays_required_for_it() -> None:
    assert SayStep.model_validate({"from": "u1", "text": "你好"}).kind == "text"
    assert SayStep.model_validate({"from": "u1", "kind": "contact_card"}).text == ""
    with pytest.raises(ValueError, match="needs `text`"):
        SayStep.model_validate({"from": "u1"})
    with pytest.raises(ValueError, match="kind"):
        SayStep.model_validate({"from": "u1", "text": "x", "kind": "sticker"})
