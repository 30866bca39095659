"""`qunfu run` as a newcomer meets it: the demo shows the bot at work, edits are picked up live
while the process keeps running, Ctrl-C stops it with unsent messages kept, the URLs it prints
open, and the CLI says which database it reads."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from bot.cli import app as cli
from tests.support import ROOT, copy_ops

pytestmark = pytest.mark.slow


def write_config(
    base: Path,
    *,
    demo: bool,
    speed: int,
    console: bool = False,
    web_port: int | None = None,
    extra: str = "",
) -> Path:
    shutil.copytree(ROOT / "demo", base / "demo")
    config = base / "config.yaml"
    web = f"{{enabled: true, port: {web_port}}}" if web_port else "{enabled: false}"
    config.write_text(
        "campaigns_dir: campaigns\ntemplates_dir: templates\n"
        "database: {url: sqlite:///var/qunfu.db}\n"
        f"simulator: {{demo: {'demo/tour.yaml' if demo else 'null'}, speed: {speed}, "
        f"console: {str(console).lower()}}}\nweb: {web}\n{extra}",
        encoding="utf-8",
    )
    return config


def start(config: Path, *args: str, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=stdin,
        text=True,
        env=env,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Captured:
    """Lines a child process writes, collected by a thread so reads never block the test."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.lines.append(line)

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not seen in {timeout}s; got:\n{''.join(self.lines)}")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_demo_shows_routing_welcome_faq_and_a_push(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    proc = start(write_config(base, demo=True, speed=300))
    stdout = Captured(proc.stdout)
    try:
        out = stdout.wait_for("午餐福利", timeout=60)
    finally:
        stop(proc)
    assert "为您找到附近有空位的福利群" in out
    assert "欢迎加入「深圳南山科技园福利1群」" in out
    assert "首年免年费" in out
    # The banner says where the demo writes, and the CLI reads it there when asked to.
    assert f"database: {base / 'var' / 'demo.db'}" in out
    config = str(base / "config.yaml")
    plain = CliRunner().invoke(cli, ["outbox", "status", "--config", config])
    assert plain.exit_code == 0, plain.output
    assert f"reading {base / 'var' / 'qunfu.db'}" in plain.stderr
    assert "add --demo" in plain.stderr
    demo = CliRunner().invoke(cli, ["outbox", "status", "--config", config, "--demo"])
    assert demo.exit_code == 0, demo.output
    assert f"reading {base / 'var' / 'demo.db'}" in demo.stderr
    sent = int(re.search(r"^sent\s+(\d+)$", demo.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert sent >= 3  # the invitation, the welcome, the FAQ answer at least


def test_a_broken_edit_is_reported_and_the_bot_keeps_running(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    proc = start(write_config(base, demo=False, speed=1), "--no-demo")
    stdout, stderr = Captured(proc.stdout), Captured(proc.stderr)
    try:
        stdout.wait_for("scheduled campaigns", timeout=30)
        time.sleep(1.0)
        meals = base / "campaigns" / "meals.yaml"
        meals.write_text(
            meals.read_text(encoding="utf-8").replace("kind: meal", "kind: meals", 1),
            encoding="utf-8",
        )
        err = stderr.wait_for("meals.yaml:", timeout=30)
        assert "last good version stays live" in err
        assert proc.poll() is None
        meals.write_text(
            (ROOT / "campaigns" / "meals.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        stderr.wait_for("ops data reloaded", timeout=30)
        assert proc.poll() is None
    finally:
        stop(proc)


# Replies go out one a minute, so a few typed requests leave sends waiting in the outbox.
SLOW_OUTBOX = "outbox: {rate_per_minute: 1, jitter: 0s}\n"


def outbox_statuses(base: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{base / 'var' / 'qunfu.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
            return {status: n for status, n in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_run_and_unsent_messages_wait_in_the_outbox(
    tmp_path: Path, sig: signal.Signals
) -> None:
    base = copy_ops(tmp_path)
    config = write_config(
        base, demo=False, speed=1, console=True, web_port=free_port(), extra=SLOW_OUTBOX
    )
    # stdin is a pipe that stays open, as a terminal does: the console is waiting on it.
    proc = start(config, "--no-demo", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    stdout = Captured(proc.stdout)
    try:
        stdout.wait_for("Ctrl-C to stop", timeout=30)
        proc.stdin.write("contact u1 张三\n" + "say u1 我要进群\n" * 3)
        proc.stdin.flush()
        stdout.wait_for("群福助手 💬 张三", timeout=30)  # the first reply went out
        asked = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=20)  # the old console thread kept the process alive forever
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"{sig.name}: stopped {took:.2f} s after the signal")
    assert code == 0
    assert "unsent messages stay in the outbox" in "".join(stdout.lines)
    statuses = outbox_statuses(base)
    assert statuses.get("sent") == 1
    assert statuses.get("pending", 0) >= 1  # kept for the next run, not cut off mid-send
    assert "sending" not in statuses


def test_every_url_the_banner_prints_answers_and_the_root_leads_to_the_simulator(
    tmp_path: Path,
) -> None:
    base = copy_ops(tmp_path)
    proc = start(write_config(base, demo=False, speed=1, web_port=free_port()), "--no-demo")
    stdout, stderr = Captured(proc.stdout), Captured(proc.stderr)
    try:
        banner = stdout.wait_for("health:", timeout=30)
        urls = re.findall(r"http://\S+", banner)
        assert any(u.endswith("/") for u in urls) and len(urls) >= 3, banner
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            for url in urls:
                response = http.get(url)
                assert response.status_code == 200, (url, response.status_code, stderr.lines)
                if url.endswith("/"):
                    assert response.url.path == "/sim"
    finally:
        stop(proc)


def test_a_web_port_in_use_is_a_plain_message_not_a_traceback(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start(write_config(base, demo=False, speed=1, web_port=port), "--no-demo")
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "web.port" in err
    assert "Traceback" not in err
