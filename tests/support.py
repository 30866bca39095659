"""Helpers for tests that run a whole bot in-process on the simulator and a virtual clock."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.app import Qunfu, load_source
from bot.config import Settings, settings_from_mapping
from bot.gateways.simulator import SimulatorGateway
from bot.simulation import action_record
from scheduler.clock import VirtualClock, aware

ROOT = Path(__file__).resolve().parents[1]


def copy_ops(tmp_path: Path) -> Path:
    """A private copy of the shipped campaigns/ and templates/ that a test may edit."""
    base = tmp_path / "ops"
    shutil.copytree(ROOT / "campaigns", base / "campaigns")
    shutil.copytree(ROOT / "templates", base / "templates")
    return base


def bot_settings(base: Path, **overrides: Any) -> Settings:
    """Settings like the shipped config, rooted at ``base``, with a SQLite file there."""
    data: dict[str, Any] = {
        "database": {"url": "sqlite:///var/qunfu.db"},
        "outbox": {"seed": 1},
        "simulator": {"demo": None},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return settings_from_mapping(data, base)


@dataclass
class BotRig:
    """A bot, its virtual clock and its simulator, for stepping through a story."""

    bot: Qunfu
    clock: VirtualClock
    gateway: SimulatorGateway

    async def advance_to(self, when: datetime) -> None:
        """Deliver pending events, then do all due work up to ``when``."""
        for event in self.gateway.pending_events():
            await self.bot.handle(event)
        while (nxt := self.bot.next_due()) is not None and nxt <= aware(when):
            if nxt > self.clock.now():
                self.clock.set(nxt)
            await self.bot.run_due()
            if self.bot.next_due() == nxt:
                break
        self.clock.set(aware(when))
        await self.bot.run_due()

    def records(self) -> list[dict[str, Any]]:
        """The transcript as contract records."""
        return [action_record(s) for s in self.gateway.transcript]


def make_rig(settings: Settings, start: datetime, clock: VirtualClock | None = None) -> BotRig:
    """A bot on the simulator, its rooms created from the groups directory."""
    clock = clock or VirtualClock(start)
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    bot = Qunfu(settings, clock, gateway, load_source(settings))
    for group in bot.planner().ops.groups.values():
        gateway.add_room(group.id, group.name)
    return BotRig(bot, clock, gateway)


def assert_transcript_meets(records: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    """Check a `qunfu simulate --json` transcript against a scenario's expectations file.

    ``expected`` holds ``sends`` (in order: ``to``, ``has`` substrings, optional ``mentions``),
    ``remove`` (every removal, in order), ``never`` (strings no send may contain) and ``count``
    (``has`` / ``n``: how many sends contain a string).
    """
    says = [r for r in records if r["action"] == "say"]
    shown = "\n".join(f"{r['at']} {r['to']} {r['text']!r} {r['mentions']}" for r in says)

    def matches(record: dict[str, Any], want: dict[str, Any]) -> bool:
        return (
            record["to"] == want["to"]
            and all(h in record["text"] for h in want["has"])
            and ("mentions" not in want or record["mentions"] == want["mentions"])
        )

    position = 0
    for want in expected["sends"]:
        found = next((i for i in range(position, len(says)) if matches(says[i], want)), None)
        assert found is not None, f"missing after send {position}: {want}\n{shown}"
        position = found + 1
    removals = [
        {"room": r["room"], "contact": r["contact"]} for r in records if r["action"] == "remove"
    ]
    assert removals == expected["remove"]
    for text in expected["never"]:
        assert not any(text in r["text"] for r in says), f"{text!r} was sent\n{shown}"
    for rule in expected["count"]:
        n = sum(rule["has"] in r["text"] for r in says)
        assert n == rule["n"], f"{rule}: {n}\n{shown}"
