"""The people the bot writes to, on the simulator.

The managers of the ops data and ``entry.ops_contacts`` are known from the start, in a scenario
and in ``qunfu run``, so an escalation reaches them without a `contact` step. A send to someone
the simulator still does not know is not delivered: the outbox records it ``failed`` at once
(never ``uncertain``, never retried) and ``qunfu simulate`` prints its transcript as always, exits
0 and warns once per such recipient, located at the step during which the send was made.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from sqlalchemy import Engine
from typer.testing import CliRunner

import bot.simulation
from bot.cli import app
from bot.config import OutboxSettings, QuietHours
from bot.events import Say, contact_conv
from bot.gateways.simulator import (
    UNDELIVERABLE_LIMIT,
    Refusal,
    SimulatorGateway,
    UnknownRecipient,
)
from bot.outbox import Outbox, OutboxItem
from bot.simulation import Simulation, load_scenario, scenario_settings
from scheduler.clock import SHANGHAI, VirtualClock
from tests.integration import test_run as live
from tests.support import assert_transcript_meets, copy_ops

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
runner = CliRunner()


def test_a_manager_without_a_contact_step_gets_the_escalation_and_the_run_exits_0() -> None:
    result = runner.invoke(app, ["simulate", str(SCENARIOS / "unknown_manager.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    expected = YAML(typ="safe").load(
        (SCENARIOS / "unknown_manager.expected.yaml").read_text("utf-8")
    )
    assert_transcript_meets(records, expected)
    private = [r for r in records if r["to"] == "contact:wxid_cm_li"]
    assert private and "白金卡有什么权益" in private[0]["text"]
    assert "warning" not in result.stderr


def test_a_send_nobody_can_receive_is_a_located_warning_after_the_whole_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the config named no managers: nobody introduces the two the ticket goes to.
    monkeypatch.setattr(bot.simulation, "add_staff_contacts", lambda gateway, bot: None)
    result = runner.invoke(app, ["simulate", str(SCENARIOS / "unknown_manager.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    # The member is still told, and nothing the managers were sent is in the transcript.
    assert [r["to"] for r in records] == ["room:sz-nanshan-kjy"]
    assert "工单 #1" in records[0]["text"]
    warnings = [line for line in result.stderr.splitlines() if "unknown_manager.yaml:" in line]
    # The manager is written to during the question's step (line 9), the backup during the
    # advance; each recipient once, though the manager was also sent a reminder.
    assert len(warnings) == 2, result.stderr
    assert warnings[0].endswith(
        "unknown_manager.yaml:9:5: warning: the bot sent to contact 'wxid_cm_li', which the "
        "simulator does not know: add a `contact` step for wxid_cm_li (a send made during "
        "this step)"
    )
    assert "unknown_manager.yaml:10:5: warning: " in warnings[1]
    assert "`contact` step for wxid_cm_wang" in warnings[1]
    assert "Traceback" not in result.output


async def test_managers_and_ops_contacts_are_known_and_a_contact_step_renames_them(
    tmp_path: Path,
) -> None:
    scenario_file = tmp_path / "renamed.yaml"
    scenario_file.write_text(
        f"start: 2026-12-01T10:00:00+08:00\nconfig: {SCENARIOS / 'support' / 'config.yaml'}\n"
        "steps:\n"
        "  - contact: {id: u1, name: 张三}\n"
        "  - contact: {id: wxid_cm_li, name: 李四}\n"
        "  - join: {room: sz-nanshan-kjy, members: [u1]}\n"
        '  - say: {from: u1, room: sz-nanshan-kjy, text: "@群福助手 白金卡有什么权益", '
        "mentions: [bot]}\n"
        "  - advance: 1m\n"
        '  - say: {from: wxid_cm_li, text: "#1 白金卡含机场贵宾厅"}\n'
        "  - advance: 1m\n"
        # The ops contact asks for tickets with no `contact` step of their own.
        "  - say: {from: ops-zhao, text: 工单}\n"
        "  - advance: 1m\n",
        encoding="utf-8",
    )
    scenario, positions = load_scenario(scenario_file)
    settings = scenario_settings(scenario, scenario_file, None)
    simulation = Simulation(scenario, scenario_file, settings, positions)
    gateway = simulation.gateway
    transcript = await simulation.run()
    assert gateway.person("wxid_cm_li").name == "李四"  # the step's name, not the directory's
    assert gateway.person("wxid_cm_wang").name == "王经理"
    assert "ops-zhao" in gateway.contacts
    said = [(s.action.to, s.action.text) for s in transcript if isinstance(s.action, Say)]
    assert any(to == "room:sz-nanshan-kjy" and "机场贵宾厅" in text for to, text in said)
    assert any(to == contact_conv("ops-zhao") for to, _ in said)
    assert simulation.warnings == []


def test_a_name_already_given_is_not_replaced_by_a_known_contact() -> None:
    gateway = SimulatorGateway(VirtualClock(T0))
    gateway.add_contact("wxid_cm_li", "老李")
    gateway.add_known_contact("wxid_cm_li", "李经理")
    gateway.add_known_contact("ops-zhao")
    gateway.add_known_contact("ops-zhao", "赵")  # fills an empty name
    assert gateway.person("wxid_cm_li").name == "老李"
    assert gateway.person("ops-zhao").name == "赵"


async def test_undeliverable_sends_are_recorded_only_when_asked_small_and_bounded() -> None:
    gateway = SimulatorGateway(VirtualClock(T0))
    with pytest.raises(UnknownRecipient):
        await gateway.perform(Say(contact_conv("stranger"), "您好"))
    assert gateway.undeliverable == []  # `qunfu run` never asks: nothing piles up
    gateway.record_undeliverable = True
    for i in range(UNDELIVERABLE_LIMIT + 5):
        for _ in range(2):  # each recipient once
            with pytest.raises(UnknownRecipient):
                await gateway.perform(Say(contact_conv(f"s{i}"), "您好"))
    kept = gateway.undeliverable
    assert len(kept) == UNDELIVERABLE_LIMIT
    assert kept[0] == Refusal(
        "contact",
        "s0",
        "the bot sent to contact 's0', which the simulator does not know: "
        "add a `contact` step for s0",
    )
    assert all(type(r) is Refusal and type(r.message) is str for r in kept)
    assert gateway.take_undeliverable() == kept and gateway.undeliverable == []


async def test_the_outbox_records_an_unknown_recipient_failed_and_retries_a_refusal(
    engine: Engine,
) -> None:
    clock = VirtualClock(T0)
    gateway = SimulatorGateway(clock)
    gateway.record_undeliverable = True
    gateway.add_contact("u1", "张三")
    outbox = Outbox(engine, OutboxSettings(jitter=timedelta(0)), QuietHours(), clock)
    outbox.enqueue(
        [
            OutboxItem(key="known", action=Say(contact_conv("u1"), "您好"), not_before=T0),
            OutboxItem(
                key="nobody", action=Say(contact_conv("wxid_cm_li"), "新工单"), not_before=T0
            ),
        ]
    )
    gateway.fail_next = 1  # the first send (to u1) meets a passing refusal
    for _ in range(50):
        await outbox.deliver_due(gateway)
        due = outbox.next_due()
        if due is None:
            break
        clock.set(max(due, clock.now()))
    nobody, known = outbox.get("nobody"), outbox.get("known")
    assert nobody is not None and known is not None
    assert nobody.status == "failed" and nobody.attempts == 1
    assert "add a `contact` step for wxid_cm_li" in (nobody.last_error or "")
    assert known.status == "sent"  # refused once, retried, delivered
    assert [s.action.to for s in gateway.transcript] == [contact_conv("u1")]
    assert [r.ident for r in gateway.undeliverable] == ["wxid_cm_li"]


@pytest.mark.slow
def test_qunfu_run_on_the_simulator_knows_the_managers(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    config = live.write_config(base, demo=False, speed=1, console=True)
    proc = live.start(config, "--no-demo", stdin=subprocess.PIPE)
    stdout = live.Captured(proc.stdout)
    try:
        stdout.wait_for("scheduled campaigns", timeout=30)
        assert proc.stdin is not None
        # A manager of campaigns/managers.yaml asks for their tickets, never added by hand.
        proc.stdin.write("say wxid_cm_li 工单\n")
        proc.stdin.flush()
        out = stdout.wait_for("没有待处理的工单", timeout=30)
    finally:
        live.stop(proc)
    assert "unknown contact" not in out
    assert "李经理" in out  # the directory's name
