"""``qunfu run`` with bot accounts, whose every account's token is refused (issue 9, bad input).

The process used to wait for a login before its loop started: with every account it held
refused it waited for ever, kept its leases, and nobody learnt the account was down. Now the
loop starts at once: the refused account is marked down (``qunfu accounts``) and a SIGTERM
stops the process cleanly.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.accounts import env_name
from db.account_repositories import AccountHealthRepo
from db.session import make_engine
from tests.support import copy_ops
from tests.wechaty.conftest import PuppetHarness, _require_node, free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = """\
gateway: wechaty
bot: {id: bot-a, name: 群福助手}
accounts:
  - {id: bot-a, name: 群福助手}
database: {url: "sqlite:///var/qunfu.db"}
web: {enabled: false}
simulator: {demo: null, console: false}
"""


async def test_a_process_whose_only_account_is_refused_runs_its_loop_and_stops(
    tmp_path: Path,
) -> None:
    _require_node()
    service = PuppetHarness(free_port(), secrets.token_hex(12), tmp_path / "service.log")
    await service.start()
    base = copy_ops(tmp_path)
    (base / "config.yaml").write_text(CONFIG, encoding="utf-8")
    env = {
        **os.environ,
        env_name("bot-a", "endpoint"): service.endpoint,
        env_name("bot-a", "token"): "not-" + service.token,  # the service refuses it
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "-c", str(base / "config.yaml")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        health = None
        deadline = time.monotonic() + 60
        db = base / "var" / "qunfu.db"
        while time.monotonic() < deadline and child.poll() is None:
            if db.exists():
                engine = make_engine(f"sqlite:///{db}")
                try:
                    health = AccountHealthRepo(engine).all().get("bot-a")
                except Exception:  # noqa: BLE001 - the tables may not be there yet
                    health = None
                finally:
                    engine.dispose()
                if health is not None:
                    break
            await asyncio.sleep(0.5)
        assert child.poll() is None, child.stderr.read().decode()[-2000:] if child.stderr else ""
        assert health is not None, "the loop never ran: no health recorded for bot-a"
        assert health.up is False and health.last_error and "token" in health.last_error
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stderr is not None:
            child.stderr.close()
        await service.stop()
