"""`qunfu outbox prune`: sent rows past the retention go (archived first), and it says so."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.config import OutboxSettings, QuietHours
from bot.events import Say
from bot.outbox import Outbox, OutboxItem
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, VirtualClock

ROOT = Path(__file__).resolve().parents[2]


class Gateway:
    bot_id = "bot"

    async def perform(self, action: object) -> None:
        return None


def test_prune_archives_old_sent_rows_and_refuses_a_cutoff_inside_the_retention(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///q.db}\noutbox: {retention: 30d}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    long_ago = datetime(2025, 1, 6, 11, 30, tzinfo=SHANGHAI)
    clock = VirtualClock(long_ago)
    outbox = Outbox(engine, OutboxSettings(rate_per_minute=600, jitter=0), QuietHours(), clock)
    outbox.enqueue(OutboxItem(f"old-{i}", Say("room:g1", "午餐"), long_ago) for i in range(3))
    for _ in range(3):
        asyncio.run(outbox.deliver_due(Gateway()))  # type: ignore[arg-type]
        clock.set(clock.now() + timedelta(seconds=1))
    engine.dispose()
    runner = CliRunner()
    args = ["outbox", "prune", "--config", str(config)]

    too_recent = runner.invoke(app, [*args, "--before", "2999-01-01"])
    assert too_recent.exit_code == 1 and "outbox.retention" in too_recent.output
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "would prune 3 sent rows" in dry.stdout
    archive = tmp_path / "archive" / "outbox.jsonl"
    done = runner.invoke(app, [*args, "--archive", str(archive)])
    assert done.exit_code == 0, done.output
    assert "pruned 3 sent rows" in done.stdout and str(archive) in done.stdout
    lines = archive.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == ["old-0", "old-1", "old-2"]
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to prune" in again.stdout
    status = runner.invoke(app, ["outbox", "status", "--config", str(config)]).stdout
    assert "sent       0" in status
