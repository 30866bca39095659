"""`qunfu run` as a newcomer meets it: the demo shows the bot at work, and edits are picked up
live while the process keeps running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import ROOT, copy_ops

pytestmark = pytest.mark.slow


def write_config(base: Path, *, demo: bool, speed: int) -> Path:
    shutil.copytree(ROOT / "demo", base / "demo")
    config = base / "config.yaml"
    config.write_text(
        "campaigns_dir: campaigns\ntemplates_dir: templates\n"
        "database: {url: sqlite:///var/qunfu.db}\n"
        f"simulator: {{demo: {'demo/tour.yaml' if demo else 'null'}, speed: {speed}, "
        "console: false}\nweb: {enabled: false}\n",
        encoding="utf-8",
    )
    return config


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


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
