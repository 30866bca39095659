"""Several Wechaty bot accounts as one gateway: each its own puppet-service connection.

Each configured account connects with ``QUNFU_ACCOUNT_<ID>_ENDPOINT`` / ``_TOKEN`` and
reconnects on its own (:class:`~bot.gateways.wechaty.WechatyGateway` supervises itself). The
outbox sends through :meth:`MultiAccountGateway.via`, so a refused token stops only that
account's sends; events from every connection arrive on one stream, each private message tagged
with the account it reached (so the reply goes back through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bot.accounts import env_name
from bot.config import AccountSettings, Settings
from bot.events import Action, Event, LocationShared, MessageReceived
from bot.gateways.wechaty import WechatyGateway


class MultiAccountGateway:
    """One :class:`WechatyGateway` per account, behind the ``ChatGateway`` protocol."""

    def __init__(self, gateways: Mapping[str, WechatyGateway]) -> None:
        if not gateways:
            raise ValueError("at least one account is needed")
        self._gateways = dict(gateways)
        self._default = next(iter(self._gateways))
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self._pumps: list[asyncio.Task[None]] = []

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

    def health(self) -> dict[str, Any]:
        """Each account's connection health."""
        return {a: g.health() for a, g in self._gateways.items()}

    async def start(self) -> None:
        """Connect every account (in the background) and merge their events."""
        for account, g in self._gateways.items():
            await g.start()
            self._pumps.append(asyncio.create_task(self._pump(account, g)))

    async def stop(self) -> None:
        """Drop every connection."""
        for task in self._pumps:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for g in self._gateways.values():
            await g.stop()

    async def wait_logged_in(self, timeout: float | None = None) -> None:
        """Return once some account is logged in (the others keep connecting)."""
        waits = [asyncio.create_task(g.wait_logged_in(None)) for g in self._gateways.values()]
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
