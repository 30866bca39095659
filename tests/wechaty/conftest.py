"""A real Wechaty puppet service (Node, mock puppet) for gateway tests, and helpers to drive it.

``puppet_service`` starts ``puppet_server.mjs`` on a free 127.0.0.1 port with a fresh token and
yields a :class:`PuppetHarness`: tell it what people do (``contact``, ``room``, ``join``,
``say``, ``location``, ...) and read what the bot did from ``harness.sent``. Whole-bot tests
can hand ``harness.endpoint`` / ``harness.token`` to the app's gateway the same way
``gateway`` below does.

When Node or the npm packages are missing the tests skip, except with ``CI=true``, where they
fail. Install with ``npm ci --ignore-scripts`` in tests/wechaty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.events import Event
from bot.gateways.wechaty import WechatyGateway

HERE = Path(__file__).parent
SERVER = HERE / "puppet_server.mjs"
BOT_ID = "qunfu-bot"
Report = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_node() -> str | None:
    """Why the Node puppet service cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "wechaty-puppet-service").is_dir():
        return "npm packages missing: run `npm ci --ignore-scripts` in tests/wechaty"
    return None


class PuppetHarness:
    """The Node puppet service process and its JSON-lines control protocol.

    The people and rooms created through it are remembered, so :meth:`restart` brings back a
    service that knows the same world (as a real provider would after a restart).
    """

    def __init__(self, port: int, token: str, log_path: Path, *, tls: bool = False) -> None:
        self.port, self.token, self.tls = port, token, tls
        self.endpoint = f"127.0.0.1:{port}"
        self.bot_id = BOT_ID
        self.sent: list[Report] = []
        self.ready: Report = {}
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[Report]] = {}
        self._seq = 0
        self._changed = asyncio.Condition()
        self._contacts: dict[str, str] = {}
        self._rooms: dict[str, tuple[str, list[str]]] = {}

    # -- process --------------------------------------------------------------------------

    async def start(self, timeout: float = 60.0) -> None:
        args = [str(SERVER), "--port", str(self.port)] + (["--tls"] if self.tls else [])
        env = {
            **os.environ,
            "WECHATY_PUPPET_SERVICE_TOKEN": self.token,
            "QUNFU_HARNESS_BOT_ID": self.bot_id,
            "WECHATY_LOG": "warn",
        }
        with self._log_path.open("ab") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                "node",
                *args,
                cwd=HERE,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        self.ready = {}
        self._reader = asyncio.create_task(self._read(self._proc))
        try:
            await self.wait_for(lambda: bool(self.ready), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"puppet service did not start; see {self._log_path}:\n" + self.log_tail()
            ) from None
        for contact_id, name in self._contacts.items():
            await self.command("contact", id=contact_id, name=name)
        for room_id, (topic, members) in self._rooms.items():
            await self.command("room", id=room_id, topic=topic, members=members)

    async def stop(self) -> None:
        """Stop the service the hard way (as a crash or a network cut would look)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def log_tail(self, lines: int = 30) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                report = json.loads(raw)
            except json.JSONDecodeError:
                continue
            kind = report.get("event")
            if kind in ("ok", "error") and report.get("seq") in self._replies:
                future = self._replies.pop(report["seq"])
                if not future.done():
                    future.set_result(report)
            elif kind == "ready":
                self.ready = report
            elif kind in ("sent", "invite", "remove", "friendship-accept"):
                self.sent.append(report)
            async with self._changed:
                self._changed.notify_all()

    # -- control --------------------------------------------------------------------------

    async def command(self, cmd: str, **fields: Any) -> Report:
        """Run one harness command and return its reply; raise when the harness refused it."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None, "puppet service not running"
        self._seq += 1
        future: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        self._replies[self._seq] = future
        line = json.dumps({"cmd": cmd, "seq": self._seq, **fields}, ensure_ascii=False)
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        reply = await asyncio.wait_for(future, 15)
        if reply["event"] == "error":
            raise RuntimeError(f"harness refused {cmd}: {reply.get('error')}")
        return reply

    async def contact(self, contact_id: str, name: str) -> None:
        self._contacts[contact_id] = name
        await self.command("contact", id=contact_id, name=name)

    async def room(self, room_id: str, members: list[str], topic: str = "") -> None:
        self._rooms[room_id] = (topic or room_id, list(members))
        await self.command("room", id=room_id, topic=topic or room_id, members=members)

    async def join(self, room_id: str, members: list[str], inviter: str | None = None) -> None:
        self._rooms[room_id][1].extend(members)
        await self.command("join", room=room_id, members=members, inviter=inviter)

    async def leave(self, room_id: str, members: list[str]) -> None:
        kept = [m for m in self._rooms[room_id][1] if m not in members]
        self._rooms[room_id] = (self._rooms[room_id][0], kept)
        await self.command("leave", room=room_id, members=members)

    async def say(
        self, sender: str, text: str, *, room: str | None = None, mentions: tuple[str, ...] = ()
    ) -> None:
        await self.command("say", **{"from": sender}, text=text, room=room, mentions=list(mentions))

    async def wait_for(self, ready: Callable[[], bool], timeout: float = 10.0) -> None:
        async def watch() -> None:
            async with self._changed:
                await self._changed.wait_for(ready)

        await asyncio.wait_for(watch(), timeout)

    async def wait_sent(self, match: Callable[[Report], bool], timeout: float = 10.0) -> Report:
        """The first thing the bot did that ``match`` accepts, waiting for it if needed."""
        await self.wait_for(lambda: any(match(r) for r in self.sent), timeout)
        return next(r for r in self.sent if match(r))


class EventTap:
    """Collects a gateway's events in the background so tests can wait for one."""

    def __init__(self, gateway: WechatyGateway) -> None:
        self.events: list[Event] = []
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._pump(gateway.events()))

    async def _pump(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self.events.append(event)
            async with self._new:
                self._new.notify_all()

    async def next(self, match: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        async def watch() -> Event:
            async with self._new:
                await self._new.wait_for(lambda: any(match(e) for e in self.events))
            return next(e for e in self.events if match(e))

        return await asyncio.wait_for(watch(), timeout)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _require_node() -> None:
    reason = missing_node()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Wechaty integration test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
async def puppet_service(tmp_path: Path) -> AsyncIterator[PuppetHarness]:
    _require_node()
    harness = PuppetHarness(free_port(), secrets.token_hex(12), tmp_path / "puppet-service.log")
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def gateway(puppet_service: PuppetHarness) -> AsyncIterator[WechatyGateway]:
    gw = WechatyGateway(
        puppet_service.endpoint,
        puppet_service.token,
        keepalive=2.0,
        call_timeout=5.0,
        connect_timeout=5.0,
        backoff=(0.2, 1.0),
    )
    await gw.start()
    await gw.wait_logged_in(30)
    try:
        yield gw
    finally:
        await gw.aclose()


@pytest.fixture
async def tap(gateway: WechatyGateway) -> AsyncIterator[EventTap]:
    t = EventTap(gateway)
    try:
        yield t
    finally:
        await t.close()
