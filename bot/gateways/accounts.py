"""Several Wechaty bot accounts as one gateway: each its own puppet-service connection.

Each configured account connects with ``QUNFU_ACCOUNT_<ID>_ENDPOINT`` / ``_TOKEN`` and
reconnects on its own (:class:`~bot.gateways.wechaty.WechatyGateway` supervises itself). The
outbox sends through :meth:`MultiAccountGateway.via`, so a refused token stops only that
account's sends; events from every connection arrive on one stream, each private message tagged
with the account it reached (so the reply goes back through it).

A process connects only the accounts it sends for (:meth:`MultiAccountGateway.follow`, given
:meth:`bot.accounts.AccountBook.local_accounts`): on PostgreSQL with several processes, an account
is connected when this process takes its lease and disconnected a little after it lets it go (so
a send in hand finishes first); alone, every account is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any

from loguru import logger

from bot.accounts import env_name
from bot.config import AccountSettings, Settings
from bot.events import Action, Event, LocationShared, MessageReceived
from bot.gateways.wechaty import WechatyGateway


class MultiAccountGateway:
    """One :class:`WechatyGateway` per account, behind the ``ChatGateway`` protocol."""

    def __init__(
        self,
        gateways: Mapping[str, WechatyGateway],
        *,
        every: float = 1.0,
        linger: float = 15.0,
    ) -> None:
        """``every``: seconds between looks at the accounts wanted; ``linger``: seconds an
        account stays connected after it stopped being wanted (longer than a send's call)."""
        if not gateways:
            raise ValueError("at least one account is needed")
        self._gateways = dict(gateways)
        self._default = next(iter(self._gateways))
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self._pumps: list[asyncio.Task[None]] = []
        self._wanted: Callable[[], Collection[str]] | None = None
        self._connected: set[str] = set()
        self._unwanted_since: dict[str, float] = {}
        self._every, self._linger = every, linger
        self._follower: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls, settings: Settings, env: Mapping[str, str], **options: Any
    ) -> MultiAccountGateway:
        """A connection per configured account; ValueError naming the missing variables."""
        accounts: Sequence[AccountSettings] = settings.bot_accounts()
        missing = [
            env_name(a.id, what)
            for a in accounts
            for what in ("endpoint", "token")
            if not env.get(env_name(a.id, what), "").strip()
        ]
        if missing:
            raise ValueError(f"not set: {', '.join(missing)}")
        gateways = {}
        for a in accounts:
            scoped = {
                "WECHATY_PUPPET_SERVICE_ENDPOINT": env[env_name(a.id, "endpoint")].strip(),
                "WECHATY_PUPPET_SERVICE_TOKEN": env[env_name(a.id, "token")].strip(),
            }
            gateways[a.id] = WechatyGateway.from_env(settings, env=scoped, **options)
        return cls(gateways)

    @property
    def bot_id(self) -> str:
        """The first account's platform id (mentions of "the bot" in groups it serves)."""
        return self._gateways[self._default].bot_id

    def via(self, account: str) -> WechatyGateway:
        """The connection of one account (the first one for an account not configured)."""
        return self._gateways.get(account) or self._gateways[self._default]

    def ready(self) -> bool:
        """True while at least one account can send (each is also asked on its own)."""
        return any(g.ready() for g in self._gateways.values())

    def map_rooms(self, platform_ids: Mapping[str, str]) -> None:
        """Every connection learns the platform id of each welfare group."""
        for g in self._gateways.values():
            g.map_rooms(platform_ids)

    def scan_images_when(self, wanted: Callable[[str, str], bool] | None) -> None:
        """Every connection scans a group image only when ``wanted(group_id, sender_id)``."""
        for g in self._gateways.values():
            g.scan_images_when(wanted)

    def health(self) -> dict[str, Any]:
        """Each account's connection health."""
        return {a: g.health() for a, g in self._gateways.items()}

    def follow(self, wanted: Callable[[], Collection[str]]) -> None:
        """Connect only the accounts ``wanted()`` names (this process's leases); call before
        :meth:`start`. Without it every account is connected."""
        self._wanted = wanted

    def connected(self) -> frozenset[str]:
        """The accounts with a live (or connecting) puppet-service connection."""
        return frozenset(self._connected)

    async def sync(self) -> None:
        """Connect the accounts newly wanted; disconnect those unwanted for ``linger`` seconds."""
        all_ids = set(self._gateways)
        wanted = all_ids if self._wanted is None else set(self._wanted()) & all_ids
        now = asyncio.get_running_loop().time()
        for account in sorted(wanted - self._connected):
            await self._gateways[account].start()
            self._connected.add(account)
            logger.bind(account=account).info("bot account connecting (lease taken)")
        for account in wanted:
            self._unwanted_since.pop(account, None)
        for account in sorted(self._connected - wanted):
            since = self._unwanted_since.setdefault(account, now)
            if now - since >= self._linger:
                await self._gateways[account].stop()
                self._connected.discard(account)
                del self._unwanted_since[account]
                logger.bind(account=account).info("bot account disconnected (lease released)")

    async def start(self) -> None:
        """Connect the wanted accounts (in the background), follow changes, merge events."""
        for account, g in self._gateways.items():
            self._pumps.append(asyncio.create_task(self._pump(account, g)))
        await self.sync()
        self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.sync()
            except Exception as exc:  # safe: the next look tries again
                logger.opt(exception=exc).warning("bot account connections not updated: {}", exc)

    async def stop(self) -> None:
        """Drop every connection."""
        for task in [*self._pumps, *([self._follower] if self._follower else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pumps, self._follower = [], None
        for account in sorted(self._connected):
            await self._gateways[account].stop()
        self._connected.clear()

    async def wait_logged_in(self, timeout: float | None = None) -> None:
        """Return once some connected account is logged in (the others keep connecting), or at
        once when this process holds no account (it connects them as it takes leases)."""
        if not self._connected:
            return
        waits = [
            asyncio.create_task(self._gateways[a].wait_logged_in(None)) for a in self._connected
        ]
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise TimeoutError
        finally:
            for w in waits:
                w.cancel()

    async def _pump(self, account: str, gateway: WechatyGateway) -> None:
        async for event in gateway.events():
            if isinstance(event, MessageReceived | LocationShared) and event.room_id is None:
                event = dataclasses.replace(event, account=account)
            await self._queue.put(event)

    async def perform(self, action: Action) -> None:
        """Carry out an action as the first account (the outbox uses :meth:`via`)."""
        await self.via(self._default).perform(action)

    async def room_qrcode(self, room_id: str) -> str:
        """A room's QR code, from the first account that is ready."""
        ready = [g for g in self._gateways.values() if g.ready()] or [self.via(self._default)]
        return await ready[0].room_qrcode(room_id)

    async def events(self) -> AsyncIterator[Event]:
        """Events from every account, in arrival order."""
        while True:
            yield await self._queue.get()
