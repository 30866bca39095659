"""The in-process simulator gateway: the embedded default and the stage for scripted scenarios.

It keeps a small model of the chat platform (contacts, rooms and who is in them), turns scripted
or typed input into domain events, and records every action the bot performs, stamped with the
injected clock's time, as the transcript.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.events import (
    Action,
    Crs,
    Event,
    Invite,
    LocationShared,
    MemberJoined,
    MemberLeft,
    MessageKind,
    MessageReceived,
    Person,
    Remove,
    Say,
    SentAction,
    parse_conv,
)
from bot.gateways.base import GatewayError, Undeliverable
from scheduler.clock import Clock


class UnknownPeer(ValueError):
    """A scripted step named a room or contact the simulator does not know."""


class UnknownRecipient(Undeliverable):
    """The bot sent to a contact or room the simulator does not know: a scenario (or demo) that
    never introduced them. Permanent: the outbox marks the send failed, and ``qunfu simulate``
    warns about it at the step during which it happened."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind, self.ident = kind, ident
        fix = (
            f"add a `contact` step for {ident}"
            if kind == "contact"
            else "only groups of the groups directory are rooms"
        )
        super().__init__(
            f"the bot sent to {kind} {ident!r}, which the simulator does not know: {fix}"
        )


@dataclass(frozen=True)
class Refusal:
    """A send the simulator could not deliver, as small plain values: no exception (and so no
    traceback and the frames it holds) is kept."""

    kind: str  # "contact" or "room"
    ident: str
    message: str


# Distinct recipients remembered between two looks (a simulation step): plenty for any
# scenario, and a bound on what a bot writing to a crowd of strangers can make it hold.
UNDELIVERABLE_LIMIT = 1000


class Roster(Protocol):
    """Who the database says is in the groups: where a restart brings people back from."""

    def members_of(self, group_id: str) -> list[Person]:
        """The people in one group now."""
        ...

    def current_person(self, person_id: str) -> Person | None:
        """The person with this id if they are in some group now."""
        ...


class SimRoom:
    """A simulated group chat.

    A room restored lazily (:meth:`SimulatorGateway.restore_lazily`) reads its members the first
    time ``members`` is used; until then it holds nothing, so a million restored memberships
    cost nothing before anyone acts in their rooms.
    """

    def __init__(
        self,
        id: str,  # noqa: A002 - the room's id, as everywhere in the domain
        name: str,
        members: Iterable[str] = (),
        load: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self._members: set[str] = set(members)
        self._load = load

    @property
    def members(self) -> set[str]:
        """The ids of the people in the room (read from the roster on first use)."""
        if self._load is not None:
            load, self._load = self._load, None
            self._members.update(load())
        return self._members

    @property
    def loaded(self) -> bool:
        """False while a lazily restored room has not read its members yet."""
        return self._load is None

    def defer(self, load: Callable[[], Iterable[str]]) -> None:
        """Read the members with ``load`` on first use (added to any already here)."""
        self._load = load

    def __repr__(self) -> str:
        shown = f"{len(self._members)} members" if self.loaded else "members not read yet"
        return f"SimRoom({self.id!r}, {self.name!r}, {shown})"


class SimulatorGateway:
    """A chat platform living in memory, driven by scenarios, the console or the web page."""

    def __init__(self, clock: Clock, bot_id: str = "bot", bot_name: str = "群福助手") -> None:
        self.bot_id = bot_id
        self.bot_name = bot_name
        self._clock = clock
        self.contacts: dict[str, Person] = {bot_id: Person(bot_id, bot_name)}
        self.rooms: dict[str, SimRoom] = {}
        self.transcript: list[SentAction] = []
        self.inputs: list[Event] = []  # what people did, in order (the web page shows it)
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners: list[Callable[[SentAction], None]] = []
        self._event_listeners: list[Callable[[Event], None]] = []
        self.fail_next: int = 0  # tests: make the next N actions fail as if the platform refused
        # Sends to people or rooms nobody introduced, each recipient once and in order; kept
        # only while ``record_undeliverable`` is on (a simulation sets it and takes them after
        # each step), so a long `qunfu run` holds nothing.
        self.record_undeliverable = False
        self._undeliverable: dict[tuple[str, str], Refusal] = {}
        # Each bot account is a simulated bot of its own; the first is the one people talk to.
        self.accounts: dict[str, SimAccount] = {bot_id: SimAccount(self, bot_id, bot_name)}
        self._roster: Roster | None = None  # set by restore_lazily

    # --- the platform's side: what people do -------------------------------------------------

    def add_room(self, room_id: str, name: str = "", members: Iterable[str] = ()) -> SimRoom:
        """Create a room (idempotent) so people can join it."""
        room = self.rooms.setdefault(room_id, SimRoom(room_id, name or room_id))
        room.members.update(members)
        return room

    def add_contact(self, contact_id: str, name: str = "") -> Person:
        """Make a person known to the simulator (a new name replaces the old one)."""
        person = Person(contact_id, name or self.contacts.get(contact_id, Person(contact_id)).name)
        self.contacts[contact_id] = person
        return person

    def add_known_contact(self, contact_id: str, name: str = "") -> Person:
        """Make a person known without renaming them: a name already given (by a step, the
        console or the database) stays; ``name`` only fills an empty one."""
        known = self.contacts.get(contact_id)
        if known is not None and (known.name or not name):
            return known
        return self.add_contact(contact_id, name)

    @property
    def undeliverable(self) -> list[Refusal]:
        """The recorded refusals (each recipient once), oldest first."""
        return list(self._undeliverable.values())

    def take_undeliverable(self) -> list[Refusal]:
        """The recorded refusals, forgetting them."""
        taken = self.undeliverable
        self._undeliverable.clear()
        return taken

    def person(self, contact_id: str) -> Person:
        """The known person with this id; :class:`UnknownPeer` otherwise."""
        try:
            return self.contacts[contact_id]
        except KeyError:
            restored = self._roster.current_person(contact_id) if self._roster else None
            if restored is not None:
                self.contacts[contact_id] = restored
                return restored
            raise UnknownPeer(
                f"unknown contact {contact_id!r}: add it with a `contact` step first"
            ) from None

    def restore_lazily(self, roster: Roster) -> None:
        """Bring back who is in each known room from ``roster``, a room at a time and only when
        the room is first used; people named in a step are looked up there too.

        A bank's database holds a million open memberships: read whole they cost gigabytes and
        a minute before the bot is ready, and almost no room is used in a session.
        """
        self._roster = roster
        for room in self.rooms.values():
            room.defer(functools.partial(self._read_room, room.id))

    def _read_room(self, room_id: str) -> list[str]:
        assert self._roster is not None
        people = self._roster.members_of(room_id)
        for p in people:
            self.contacts.setdefault(p.id, p)  # a name given in this session stays
        return [p.id for p in people]

    def room(self, room_id: str) -> SimRoom:
        """The known room with this id; :class:`UnknownPeer` otherwise."""
        try:
            return self.rooms[room_id]
        except KeyError:
            raise UnknownPeer(f"unknown room {room_id!r}: not in the groups directory") from None

    def say(
        self,
        sender_id: str,
        text: str,
        room_id: str | None = None,
        mentions: Iterable[str] = (),
        *,
        kind: MessageKind = "text",
    ) -> MessageReceived:
        """Someone says something, in a room or privately to the bot; ``kind`` posts a contact
        card, link card or image instead (``text``: what the platform would give as text)."""
        sender = self.person(sender_id)
        if room_id is not None:
            room = self.room(room_id)
            if sender_id not in room.members:
                raise UnknownPeer(f"{sender_id!r} is not a member of room {room_id!r}")
        resolved = tuple(self.bot_id if m == "bot" else m for m in mentions)
        event = MessageReceived(self._clock.now(), sender, text, room_id, resolved, kind=kind)
        self._emit(event)
        return event

    def share_location(
        self, sender_id: str, lat: float, lon: float, crs: Crs = "gcj02", room_id: str | None = None
    ) -> LocationShared:
        """Someone shares a location pin (WeChat sends GCJ-02)."""
        event = LocationShared(self._clock.now(), self.person(sender_id), lat, lon, crs, room_id)
        self._emit(event)
        return event

    def join(
        self, room_id: str, member_ids: Iterable[str], inviter: str | None = None
    ) -> MemberJoined:
        """People join a room together."""
        room = self.room(room_id)
        people = tuple(self.person(m) for m in member_ids)
        fresh = tuple(p for p in people if p.id not in room.members)
        room.members.update(p.id for p in fresh)
        event = MemberJoined(self._clock.now(), room_id, fresh, inviter)
        if fresh:
            self._emit(event)
        return event

    def leave(self, room_id: str, member_ids: Iterable[str]) -> MemberLeft:
        """People leave a room."""
        room = self.room(room_id)
        gone = tuple(m for m in member_ids if m in room.members)
        room.members.difference_update(gone)
        event = MemberLeft(self._clock.now(), room_id, gone)
        if gone:
            self._emit(event)
        return event

    def _emit(self, event: Event) -> None:
        self.inputs.append(event)
        self._queue.put_nowait(event)
        for listener in self._event_listeners:
            listener(event)

    def pending_events(self) -> list[Event]:
        """Take every queued event without waiting (simulation steps)."""
        out: list[Event] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def on_action(self, listener: Callable[[SentAction], None]) -> None:
        """Call ``listener`` with every action the bot performs (console, web page)."""
        self._listeners.append(listener)

    def on_event(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event people produce (the web page's chat view)."""
        self._event_listeners.append(listener)

    # --- the bot's side: the ChatGateway protocol --------------------------------------------

    def add_account(self, account_id: str, name: str = "群福助手") -> SimAccount:
        """Another bot account (idempotent): it acts under its own id in the transcript."""
        if account_id not in self.accounts:
            self.accounts[account_id] = SimAccount(self, account_id, name)
            self.contacts.setdefault(account_id, Person(account_id, name))
        return self.accounts[account_id]

    def via(self, account_id: str) -> SimAccount:
        """The simulated bot of one account (added on first use)."""
        return self.accounts.get(account_id) or self.add_account(account_id)

    def account_health(self) -> dict[str, tuple[bool, str | None]]:
        """Each account: whether it can send, and why not."""
        return {a.bot_id: (a.up, a.last_error) for a in self.accounts.values()}

    def ready(self) -> bool:
        """The simulator is always reachable (``fail_next`` models refusals instead)."""
        return True

    async def perform(self, action: Action) -> None:
        """Carry out an action as the first account and append it to the transcript."""
        await self.perform_as(self.bot_id, action)

    async def perform_as(self, account: str, action: Action) -> None:
        """Carry out an action as ``account`` and append it to the transcript."""
        if self.fail_next > 0:
            self.fail_next -= 1
            raise GatewayError("simulated platform refusal")
        try:
            self._check_recipients(action)
        except UnknownRecipient as exc:
            if self.record_undeliverable and len(self._undeliverable) < UNDELIVERABLE_LIMIT:
                refusal = Refusal(exc.kind, exc.ident, str(exc))
                self._undeliverable.setdefault((exc.kind, exc.ident), refusal)
            raise
        sent = SentAction(self._clock.now(), action, account=account)
        self.transcript.append(sent)
        for listener in self._listeners:
            listener(sent)
        if isinstance(action, Remove):
            # The platform reports a removal like any other leave (Wechaty's room-leave with a
            # remover), so memberships and member counts follow it.
            self.leave(action.room, [action.contact])

    def _check_recipients(self, action: Action) -> None:
        """:class:`UnknownRecipient` unless the platform knows whom ``action`` is for."""
        if isinstance(action, Say):
            kind, ident = parse_conv(action.to)
            rooms = [ident] if kind == "room" else []
            people = [] if kind == "room" else [ident]
        elif isinstance(action, Invite):
            # An invitation is not a join: the person joins when they accept (a `join` step).
            rooms, people = [action.room], [action.contact]
        else:
            return
        for room in rooms:
            try:
                self.room(room)
            except UnknownPeer:
                raise UnknownRecipient("room", room) from None
        for person in people:
            try:
                self.person(person)
            except UnknownPeer:
                raise UnknownRecipient("contact", person) from None

    async def room_qrcode(self, room_id: str) -> str:
        """A stable fake QR payload for a room."""
        self.room(room_id)
        return f"https://qunfu.invalid/qr/{room_id}"

    async def events(self) -> AsyncIterator[Event]:  # type: ignore[override]
        """Events as people produce them."""
        while True:
            yield await self._queue.get()


class SimAccount:
    """One simulated bot account: a :class:`~bot.gateways.base.ChatGateway` for its sends.

    Tests mark it down (:meth:`refuse`), as a puppet service refusing its token would.
    """

    def __init__(self, platform: SimulatorGateway, bot_id: str, name: str) -> None:
        self._platform = platform
        self.bot_id = bot_id
        self.name = name
        self.up = True
        self.last_error: str | None = None

    def refuse(self, reason: str = "token refused") -> None:
        """The platform refuses this account from now on (its sends wait)."""
        self.up, self.last_error = False, reason

    def restore(self) -> None:
        """The account can send again."""
        self.up = True

    def ready(self) -> bool:
        """False while the account is refused."""
        return self.up

    async def perform(self, action: Action) -> None:
        """Carry out an action as this account."""
        if not self.up:
            raise GatewayError(self.last_error or "account down")
        await self._platform.perform_as(self.bot_id, action)

    async def room_qrcode(self, room_id: str) -> str:
        """The room's QR payload (the platform's)."""
        return await self._platform.room_qrcode(room_id)

    def events(self) -> AsyncIterator[Event]:
        """Events come from the platform as a whole."""
        return self._platform.events()
