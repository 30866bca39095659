"""A send to someone the simulator does not know: a permanent failure, reported plainly.

In a scenario it is a located one-line error naming the contact and the fix; in the outbox the
send is recorded ``failed`` at once (never ``uncertain``, never retried), while a transient
refusal is still retried until it goes out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.cli import app
from bot.config import OutboxSettings, QuietHours
from bot.events import Say, contact_conv
from bot.gateways.simulator import SimulatorGateway
from bot.outbox import Outbox, OutboxItem
from scheduler.clock import SHANGHAI, VirtualClock

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
runner = CliRunner()


def test_a_manager_without_a_contact_step_is_a_located_error_naming_the_fix() -> None:
    result = runner.invoke(app, ["simulate", str(SCENARIOS / "unknown_manager.yaml")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "unknown_manager.yaml:" in line]
    # The manager is told during the question's step (line 9), the backup during the advance;
    # each recipient once, though the manager was also sent a reminder.
    assert len(lines) == 2, result.output
    assert lines[0].endswith(
        "unknown_manager.yaml:9:5: the bot sent to contact 'wxid_cm_li', which the simulator "
        "does not know: add a `contact` step for wxid_cm_li (a send made during this step)"
    )
    assert (
        "unknown_manager.yaml:10:5:" in lines[1] and "`contact` step for wxid_cm_wang" in lines[1]
    )
    assert "Traceback" not in result.output


async def test_the_outbox_records_an_unknown_recipient_failed_and_retries_a_refusal(
    engine: Engine,
) -> None:
    clock = VirtualClock(T0)
    gateway = SimulatorGateway(clock)
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
    assert [e.ident for e in gateway.undeliverable] == ["wxid_cm_li"]
