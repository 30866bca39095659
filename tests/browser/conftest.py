"""Browser tests: the real bot (``qunfu run``) in a subprocess, driven by Debian's Chromium.

``qunfu_server`` starts ``qunfu run --no-demo`` on a copy of the shipped config.yaml with a free
port, a temporary SQLite database, no terminal console, absolute ops-data folders and a short
welcome window, waits for ``/healthz`` and yields the base URL. ``browser`` launches
``/usr/bin/chromium`` through Playwright (never a downloaded browser). When Chromium or
Playwright is missing the tests are skipped, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60


def unavailable(reason: str) -> None:
    """Skip, or fail when ``CI=true`` (CI must run the browser tests)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests need this in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_test_config(folder: Path, port: int) -> Path:
    """The shipped config.yaml with what a test run needs changed."""
    yaml = YAML()
    config: dict[str, Any] = yaml.load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["campaigns_dir"] = str(REPO / "campaigns")
    config["templates_dir"] = str(REPO / "templates")
    config["database"]["url"] = f"sqlite:///{folder / 'qunfu.db'}"
    config["web"].update({"host": "127.0.0.1", "port": port, "enabled": True})
    config["simulator"].update({"console": False, "demo": None, "speed": 1})
    config["welcome"]["batch_window"] = "1s"
    # Scheduled pushes may fall due on the real clock while tests run; fast pacing keeps
    # the replies the tests wait for from queueing behind them.
    config["outbox"].update({"rate_per_minute": 600, "jitter": "0s"})
    path = folder / "config.yaml"
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(config, f)
    return path


@pytest.fixture(scope="session")
def qunfu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running ``qunfu run --no-demo`` (real clock, simulator gateway)."""
    folder = tmp_path_factory.mktemp("qunfu-run")
    port = _free_port()
    config = write_test_config(folder, port)
    log_path = folder / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("QUNFU_")}
    env["PYTHONUNBUFFERED"] = "1"
    base = f"http://127.0.0.1:{port}"
    # ``python -m bot`` is the ``qunfu`` console script, run by this very interpreter.
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--no-demo", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(base, proc, log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"qunfu run exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"qunfu run did not answer /healthz within {START_TIMEOUT_S}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright.

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in this thread
    while it is open, which would stop pytest-asyncio from running the async tests after us.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            unavailable(f"cannot launch {CHROMIUM}: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized browser context, in Chinese, per test."""
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()
