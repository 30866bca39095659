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


def _config_with_sent_rows(tmp_path: Path, sent_at: datetime, rows: int = 3) -> Path:
    """A config (retention 30 days) whose database holds ``rows`` sends made at ``sent_at``."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///q.db}\noutbox: {retention: 30d}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = VirtualClock(sent_at)
    outbox = Outbox(engine, OutboxSettings(rate_per_minute=600, jitter=0), QuietHours(), clock)
    outbox.enqueue(OutboxItem(f"old-{i}", Say("room:g1", "午餐"), sent_at) for i in range(rows))
    for _ in range(rows):
        asyncio.run(outbox.deliver_due(Gateway()))  # type: ignore[arg-type]
        clock.set(clock.now() + timedelta(seconds=1))
    engine.dispose()
    return config


def test_prune_archives_old_sent_rows_and_refuses_a_cutoff_inside_the_retention(
    tmp_path: Path,
) -> None:
    config = _config_with_sent_rows(tmp_path, datetime(2025, 1, 6, 11, 30, tzinfo=SHANGHAI))
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


def test_status_counts_sent_rows_past_the_retention_and_points_to_prune(tmp_path: Path) -> None:
    config = _config_with_sent_rows(tmp_path, datetime(2025, 1, 6, 11, 30, tzinfo=SHANGHAI))
    runner = CliRunner()
    status = runner.invoke(app, ["outbox", "status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    assert "sent       3" in status.stdout
    assert "3 sent rows are older than outbox.retention (30 days" in status.stdout
    assert "qunfu outbox prune" in status.stdout
    assert runner.invoke(app, ["outbox", "prune", "--config", str(config)]).exit_code == 0
    after = runner.invoke(app, ["outbox", "status", "--config", str(config)]).stdout
    assert "older than outbox.retention" not in after and "prune" not in after


def test_status_says_nothing_of_pruning_while_sent_rows_are_inside_the_retention(
    tmp_path: Path,
) -> None:
    config = _config_with_sent_rows(tmp_path, datetime.now(SHANGHAI) - timedelta(days=2))
    status = CliRunner().invoke(app, ["outbox", "status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    assert "sent       3" in status.stdout and "prune" not in status.stdout
