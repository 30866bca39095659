"""Domain events (what happened in a chat) and actions (what the bot did).

Gateways translate platform payloads into these plain values at the edge; nothing in the
domain sees a platform object. Conversations are addressed as ``room:ID`` or ``contact:ID``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Crs = Literal["gcj02", "wgs84", "bd09"]
MessageKind = Literal["text", "image", "image_qr", "contact_card", "link_card"]
"""What a message carries. Gateways map platform message types onto these: a contact card, a
link card (its text is the link's URL when the platform gives it) and an image: ``image_qr``
when the gateway found a QR code in it (the Wechaty gateway scans group images), else ``image``."""


def room_conv(room_id: str) -> str:
    """The conversation address of a group chat."""
    return f"room:{room_id}"


def contact_conv(contact_id: str) -> str:
    """The conversation address of a private chat with one person."""
    return f"contact:{contact_id}"


def parse_conv(conversation: str) -> tuple[Literal["room", "contact"], str]:
    """Split ``room:ID`` / ``contact:ID`` into its kind and id; raise ValueError otherwise."""
    kind, sep, ident = conversation.partition(":")
    if not sep or not ident or kind not in ("room", "contact"):
        raise ValueError(f"not a conversation address: {conversation!r}")
    return kind, ident  # type: ignore[return-value]


@dataclass(frozen=True)
class Person:
    """Someone the bot can see: a contact id and the display name they chose."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class MessageReceived:
    """A message; ``room_id`` is None for a private chat with the bot.

    ``kind`` says what it carries (default ``text``); for other kinds ``text`` is what the
    platform gave as text (a link card's URL, else empty).
    """

    at: datetime
    sender: Person
    text: str
    room_id: str | None = None
    mentions: tuple[str, ...] = ()
    message_id: str = ""
    account: str = ""
    """The bot account it reached (multi-account gateways say; empty: the default one)."""
    kind: MessageKind = "text"


@dataclass(frozen=True)
class LocationShared:
    """A location pin; WeChat shares GCJ-02, so that is the default."""

    at: datetime
    sender: Person
    lat: float
    lon: float
    crs: Crs = "gcj02"
    room_id: str | None = None
    label: str = ""
    account: str = ""
    """The bot account it reached (multi-account gateways say; empty: the default one)."""


@dataclass(frozen=True)
class MemberJoined:
    """People joined a group chat, together (one platform event may carry several)."""

    at: datetime
    room_id: str
    members: tuple[Person, ...]
    inviter_id: str | None = None


@dataclass(frozen=True)
class MemberLeft:
    """People left a group chat, or were removed."""

    at: datetime
    room_id: str
    member_ids: tuple[str, ...]


Event = MessageReceived | LocationShared | MemberJoined | MemberLeft


@dataclass(frozen=True)
class Say:
    """Send text to a conversation, @-mentioning the given contact ids (rooms only)."""

    to: str
    text: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invite:
    """Invite a contact into a room."""

    room: str
    contact: str


@dataclass(frozen=True)
class Remove:
    """Remove a contact from a room."""

    room: str
    contact: str


Action = Say | Invite | Remove


@dataclass(frozen=True)
class SentAction:
    """An action as the gateway carried it out, with the instant it happened."""

    at: datetime
    action: Action
    extra: dict[str, str] = field(default_factory=dict)
    account: str = ""
    """The bot account that performed it (empty: a gateway that does not say)."""
