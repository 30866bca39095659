"""The interface every chat platform adapter implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from bot.events import Action, Event


class GatewayError(RuntimeError):
    """A send failed in a way that may succeed later (the outbox retries it with backoff)."""


class DeliveryUnknown(GatewayError):
    """The connection broke while the platform had the request: it may or may not have acted.

    The outbox records such a send as ``uncertain`` and never resends it by itself, because a
    message twice in a bank's group is the worse failure.
    """


class Undeliverable(RuntimeError):
    """The platform can never carry out this action as asked (no such contact or room): trying
    again cannot help. The outbox records the send ``failed`` at once with this reason, without
    spending retries; a fault that may pass is a :class:`GatewayError` instead.
    """


@runtime_checkable
class ChatGateway(Protocol):
    """A chat platform as the domain sees it: a stream of events and a few actions.

    ``perform`` carries out one action and raises :class:`GatewayError` when the platform
    refused or could not be reached; the outbox is the only caller.
    """

    bot_id: str

    def ready(self) -> bool:
        """False while the platform cannot take sends (e.g. disconnected); the outbox then holds
        its sends instead of spending their retries."""
        ...

    async def perform(self, action: Action) -> None:
        """Carry out one action (say, invite, remove) on the platform."""
        ...

    async def room_qrcode(self, room_id: str) -> str:
        """The current join QR code payload of a room."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Platform events, translated, in arrival order."""
        ...
