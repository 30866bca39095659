"""What a newcomer opens and reads after `./run.sh`: the web root leads somewhere, and the CLI
says which database it reads and how to read the one the demo wrote."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.config import OutboxSettings, QuietHours
from bot.events import Say
from bot.outbox import Outbox, OutboxItem
from bot.web.app import create_app
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, VirtualClock
from tests.support import ROOT, bot_settings, copy_ops, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)


async def get_root(tmp_path: Path, *, on_simulator: bool) -> httpx.Response:
    rig = make_rig(bot_settings(copy_ops(tmp_path)), T0)
    if not on_simulator:
        rig.bot.gateway = object()  # type: ignore[assignment]  # any platform but the simulator
    transport = httpx.ASGITransport(app=create_app(rig.bot))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://qunfu.test") as http:
            return await http.get("/")
    finally:
        rig.bot.close()


async def test_the_root_leads_to_the_simulator_page_on_the_simulator(tmp_path: Path) -> None:
    response = await get_root(tmp_path, on_simulator=True)
    assert response.is_redirect and response.headers["location"] == "/sim"


async def test_the_root_leads_to_the_entry_page_on_a_real_platform(tmp_path: Path) -> None:
    response = await get_root(tmp_path, on_simulator=False)
    assert response.is_redirect and response.headers["location"] == "/join"


def write_config(base: Path) -> Path:
    config = base / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///var/qunfu.db}\n",
        encoding="utf-8",
    )
    return config


def a_demo_database_with_one_pending_send(base: Path) -> None:
    """What a demo run leaves behind: var/demo.db beside the configured var/qunfu.db."""
    url = f"sqlite:///{base / 'var' / 'demo.db'}"
    (base / "var").mkdir(exist_ok=True)
    upgrade(url)
    engine = make_engine(url)
    clock = VirtualClock(T0)
    Outbox(engine, OutboxSettings(jitter=0), QuietHours(), clock).enqueue(
        [OutboxItem("k-demo", Say("room:sz-nanshan-kjy", "你好"), clock.now())]
    )
    engine.dispose()


@pytest.mark.parametrize(
    "command",
    [
        ["outbox", "status"],
        ["outbox", "list", "--status", "pending"],
        ["funnel", "--from", "2026-12-01", "--to", "2026-12-01"],
    ],
    ids=["outbox status", "outbox list", "funnel"],
)
def test_the_cli_says_which_database_it_reads_and_how_to_read_the_demos(
    tmp_path: Path, command: list[str]
) -> None:
    config = write_config(tmp_path)
    a_demo_database_with_one_pending_send(tmp_path)
    plain = CliRunner().invoke(cli, [*command, "--config", str(config)])
    assert plain.exit_code == 0, plain.output
    assert plain.stderr.splitlines()[0] == (
        f"reading {tmp_path / 'var' / 'qunfu.db'} (database.url); "
        f"the demo run writes {tmp_path / 'var' / 'demo.db'}: add --demo to read it"
    )
    demo = CliRunner().invoke(cli, [*command, "--config", str(config), "--demo"])
    assert demo.exit_code == 0, demo.output
    assert demo.stderr.startswith(f"reading {tmp_path / 'var' / 'demo.db'}")
    if command[0] == "outbox":
        assert "k-demo" in demo.stdout or "pending    1" in demo.stdout
        assert "k-demo" not in plain.stdout and "pending    1" not in plain.stdout


def test_asking_for_the_demo_database_before_any_demo_ran_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["outbox", "status", "--config", str(write_config(tmp_path)), "--demo"]
    )
    assert result.exit_code == 1
    assert "no demo database" in result.stderr and "./run.sh" in result.stderr
    plain = CliRunner().invoke(cli, ["outbox", "status", "--config", str(write_config(tmp_path))])
    assert plain.stderr.strip() == f"reading {tmp_path / 'var' / 'qunfu.db'} (database.url)"
