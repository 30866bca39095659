"""The Wechaty gateway: a real chat account behind a Wechaty puppet service (gRPC).

Platform payloads are translated into :mod:`bot.events` values here and nowhere else. The
gateway keeps one connection to the service and re-opens it with capped exponential backoff
whenever it fails (unreachable endpoint, wrong token, service restart, silent network). While
it is down, :meth:`WechatyGateway.perform` raises :class:`GatewayError` so the outbox keeps the
send and retries it later. Messages the bot account sent itself come back from the service as
message events; they are recognised by their sender and dropped, so the bot never answers
itself.

Logs are structured (``logger.bind``) and never carry names, message text or raw ids: ids are
shown as short one-way digests, enough to correlate lines, not to identify anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from loguru import logger
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty.puppet import EventResponse, EventType

from bot.config import Settings, WechatySettings
from bot.events import (
    Action,
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
    parse_conv,
)
from bot.gateways import _wechaty_compat as wire
from bot.gateways.base import DeliveryUnknown, GatewayError
from bot.gateways.images import ImageLimits, scan_message_image
from scheduler.clock import Clock, RealClock

ENV_ENDPOINT = "WECHATY_PUPPET_SERVICE_ENDPOINT"
ENV_TOKEN = "WECHATY_PUPPET_SERVICE_TOKEN"

_T = TypeVar("_T")
_NETWORK_ERRORS = (GRPCError, StreamTerminatedError, ProtocolError, OSError, TimeoutError)
_NAME_CACHE_SIZE = 5000

log = logger.bind(gateway="wechaty")


# Puppet message types that arrive as a MessageReceived of another kind than text. A group image
# is "image" until its picture is fetched and scanned: one with a QR code becomes "image_qr"
# (WechatyGateway._scan, docs/moderation.md).
_CARD_KINDS: dict[int, MessageKind] = {
    wire.MESSAGE_CONTACT: "contact_card",
    wire.MESSAGE_URL: "link_card",
    wire.MESSAGE_IMAGE: "image",
}
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def link_card_text(url_link: str, raw_text: str) -> str:
    """The text a link card stands for: its URL from the service's ``url_link`` payload (a JSON
    object with ``url``), else the first http(s) URL in the message's raw text (often the card's
    XML), else "" (a card without a readable URL is still a link card)."""
    try:
        payload = json.loads(url_link) if url_link else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("url"), str) and payload["url"]:
        return str(payload["url"])
    found = _URL.search(raw_text or "")
    return found.group(0) if found else ""


def _ref(identifier: str) -> str:
    """A short one-way digest of an id for logs."""
    return hashlib.blake2s(identifier.encode(), digest_size=4).hexdigest() if identifier else "-"


async def _within(call: Awaitable[_T], seconds: float | None) -> _T:
    """Await ``call`` for at most ``seconds``; TimeoutError otherwise.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11 the latter can swallow
    a cancellation that arrives just as the call completes, which left ``aclose()`` waiting on
    a reader that never stopped.
    """
    async with asyncio.timeout(seconds):
        return await call


class _SessionEnded(Exception):
    """The connection to the puppet service is gone; the supervisor opens a new one."""


class WechatyGateway:
    """:class:`~bot.gateways.base.ChatGateway` over a Wechaty puppet service.

    ``start()`` (or iterating :meth:`events`, or ``async with``) begins connecting in the
    background; it never blocks on the network. ``bot_id`` is ``bot_id_hint`` until the service
    reports which account is logged in, then that account's id.
    """

    def __init__(
        self,
        endpoint: str,
        token: str,
        bot_id_hint: str | None = None,
        tls: wire.TlsOptions | None = None,
        *,
        accept_friendships: bool = True,
        clock: Clock | None = None,
        call_timeout: float = 10.0,
        connect_timeout: float = 20.0,
        keepalive: float = 20.0,
        backoff: tuple[float, float] = (1.0, 30.0),
        queue_size: int = 1000,
        image_limits: ImageLimits | None = None,
    ) -> None:
        if not token:
            raise ValueError(f"a puppet service token is required ({ENV_TOKEN})")
        self._endpoint = wire.Endpoint.parse(endpoint)
        self._token = token
        self._tls = tls or wire.TlsOptions()
        self._accept_friendships = accept_friendships
        self._clock: Clock = clock or RealClock()
        self._call_timeout = call_timeout
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._backoff = backoff
        self.bot_id: str = bot_id_hint or ""
        self._self_id: str | None = None
        self._stub: PuppetStub | None = None
        self._channel: Channel | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self._names: OrderedDict[str, str] = OrderedDict()
        self._runner: asyncio.Task[None] | None = None
        self._logged_in = asyncio.Event()
        self._ready = asyncio.Event()
        self._last_event_at: datetime | None = None
        self._last_error: str | None = None
        self._sessions = 0
        self._to_platform: dict[str, str] = {}
        self._from_platform: dict[str, str] = {}
        self._images = image_limits or ImageLimits()
        self._scan_slots = asyncio.Semaphore(max(self._images.concurrency, 1))
        self._scans: set[asyncio.Task[None]] = set()
        self._scan_wanted: Callable[[str, str], bool] | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        settings: WechatySettings | Settings,
        *,
        env: Mapping[str, str] | None = None,
        bot_id_hint: str | None = None,
        **options: Any,
    ) -> WechatyGateway:
        """Build from config.yaml's ``wechaty`` section (or the whole settings) plus the Wechaty
        environment variables.

        Raise ValueError, naming the variable, when the endpoint or token is missing or the
        endpoint is not ``HOST:PORT``.
        """
        env = os.environ if env is None else env
        if isinstance(settings, Settings):
            settings = settings.wechaty
        endpoint = env.get(ENV_ENDPOINT, "").strip()
        token = env.get(ENV_TOKEN, "").strip()
        if not endpoint:
            raise ValueError(f"{ENV_ENDPOINT} is not set: expected HOST:PORT of the puppet service")
        if not token:
            raise ValueError(f"{ENV_TOKEN} is not set: expected the puppet service token")
        tls = wire.TlsOptions(settings.tls, settings.tls_ca, settings.server_name)
        options.setdefault("accept_friendships", getattr(settings, "accept_friendships", True))
        return cls(endpoint, token, bot_id_hint, tls, **options)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting (in the background) if not already doing so."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._supervise(), name="wechaty-gateway")

    async def aclose(self) -> None:
        """Drop the connection and stop reconnecting."""
        runner, self._runner = self._runner, None
        # Closing the channel first ends every call in flight, so the cancelled tasks have
        # nothing left to wait on.
        self._close_channel()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        scans = list(self._scans)
        for task in scans:
            task.cancel()
        await asyncio.gather(*scans, return_exceptions=True)

    async def stop(self) -> None:
        """Same as :meth:`aclose`."""
        await self.aclose()

    async def __aenter__(self) -> WechatyGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def wait_logged_in(self, timeout: float | None = None) -> None:
        """Return once connected with a logged-in account (sends can go); TimeoutError otherwise."""
        await _within(self._ready.wait(), timeout)

    def _update_ready(self) -> None:
        if self._stub is not None and self._logged_in.is_set():
            self._ready.set()
        else:
            self._ready.clear()

    def ready(self) -> bool:
        """True while connected with a logged-in account, i.e. sends can go."""
        return self._ready.is_set()

    def map_rooms(self, platform_ids: Mapping[str, str]) -> None:
        """Tell the gateway which platform chat id (``…@chatroom``) each welfare group has.

        The domain only ever sees group ids; a room without an entry keeps its platform id.
        """
        self._to_platform = dict(platform_ids)
        self._from_platform = {room: group for group, room in platform_ids.items()}

    def scan_images_when(self, wanted: Callable[[str, str], bool] | None) -> None:
        """Fetch and scan a group image only when ``wanted(group_id, sender_id)`` is true (the
        composition root passes "moderation could act": a welfare group, a non-staff sender).
        None, the default, scans every group image; an image not scanned stays "image"."""
        self._scan_wanted = wanted

    def _platform_room(self, group_id: str) -> str:
        return self._to_platform.get(group_id, group_id)

    def _domain_rooms(self, event: Event) -> Event:
        room_id = getattr(event, "room_id", None)
        if room_id is None or room_id not in self._from_platform:
            return event
        return dataclasses.replace(event, room_id=self._from_platform[room_id])

    def health(self) -> dict[str, Any]:
        """A snapshot for logs and ``/healthz``: no secrets, no personal data."""
        return {
            "gateway": "wechaty",
            "endpoint": str(self._endpoint),
            "tls": self._tls.enabled,
            "connected": self._stub is not None,
            "logged_in": self._stub is not None and self._logged_in.is_set(),
            "last_event_at": self._last_event_at.isoformat() if self._last_event_at else None,
            "reconnects": max(self._sessions - 1, 0),
            "last_error": self._last_error,
        }

    # -- ChatGateway ----------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Translated events in arrival order; starts the connection if needed."""
        await self.start()
        while True:
            yield await self._queue.get()

    async def perform(self, action: Action) -> None:
        """Carry out one action; GatewayError when the service is down or refuses it."""
        stub = self._connected_stub()
        if isinstance(action, Say):
            kind, ident = parse_conv(action.to)
            if kind == "room":
                ident = self._platform_room(ident)
            mentions = list(action.mentions) if kind == "room" else []
            await self._call(
                stub.message_send_text(
                    conversation_id=ident, text=action.text, mentonal_ids=mentions
                ),
                "say",
                changes=True,
            )
            log.bind(kind=kind, to=_ref(ident), mentions=len(mentions)).info("said")
        elif isinstance(action, Invite):
            room = self._platform_room(action.room)
            await self._call(
                stub.room_add(id=room, contact_id=action.contact), "invite", changes=True
            )
            log.bind(room=_ref(action.room), contact=_ref(action.contact)).info("invited")
        elif isinstance(action, Remove):
            room = self._platform_room(action.room)
            await self._call(
                stub.room_del(id=room, contact_id=action.contact), "remove", changes=True
            )
            log.bind(room=_ref(action.room), contact=_ref(action.contact)).info("removed")
        else:  # pragma: no cover - Action is a closed union
            raise TypeError(f"unsupported action {action!r}")

    async def room_qrcode(self, room_id: str) -> str:
        """The room's current join QR code payload."""
        platform_room = self._platform_room(room_id)
        return await self._call(
            wire.room_qr_code(self._connected_stub(), platform_room), "room_qrcode"
        )

    # -- connection -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            sessions_before = self._sessions
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except GRPCError as err:
                if err.status is Status.UNAUTHENTICATED:
                    # The service's message quotes the token it got: keep that out of logs.
                    self._note_error(f"puppet service refused the token (check {ENV_TOKEN})")
                else:
                    self._note_error(f"puppet service error {err.status.name}: {err.message}")
            except (_SessionEnded, *_NETWORK_ERRORS) as err:
                self._note_error(
                    f"connection to {self._endpoint} failed: {type(err).__name__}: {err}"
                )
            except Exception as err:  # noqa: BLE001 - the supervisor must outlive any bug
                log.opt(exception=err).error("unexpected failure in the Wechaty session")
                self._last_error = f"{type(err).__name__}: {err}"
            finally:
                self._close_channel()
            # A session that got through starts the backoff over; repeated failures widen it.
            failures = 1 if self._sessions > sessions_before else failures + 1
            delay = self._delay(failures)
            log.bind(retry_in=round(delay, 1), attempt=failures).warning(
                f"reconnecting to the puppet service in {delay:.1f}s (attempt {failures})"
            )
            await asyncio.sleep(delay)

    def _delay(self, failures: int) -> float:
        first, cap = self._backoff
        delay = min(cap, first * 2.0 ** (failures - 1))
        return delay * random.uniform(0.8, 1.2)

    def _note_error(self, message: str) -> None:
        self._last_error = message
        log.bind(endpoint=str(self._endpoint)).error(message)

    async def _session(self) -> None:
        channel, stub = wire.open_stub(self._endpoint, self._token, self._tls)
        self._channel = channel
        # Open the event stream first so the login event is not missed, then ask the service
        # to start the puppet: that answer proves the endpoint reachable and the token
        # accepted, so a bad setup fails here, loudly. (1.x services also greet a new stream
        # with a heartbeat, but community services may not, so we do not wait for one.)
        reader = asyncio.create_task(self._read(stub, stub.event()))
        pinger: asyncio.Task[None] | None = None
        try:
            await _within(stub.start(), self._connect_timeout)
            self._stub = stub
            self._update_ready()
            self._sessions += 1
            self._last_error = None
            log.bind(
                endpoint=str(self._endpoint), tls=self._tls.enabled, reconnects=self._sessions - 1
            ).info("connected to puppet service")
            pinger = asyncio.create_task(self._ping(stub))
            done, _ = await asyncio.wait({reader, pinger}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise _SessionEnded("event stream ended")
        finally:
            was_connected, self._stub = self._stub is not None, None
            self._update_ready()
            tasks = [t for t in (reader, pinger) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if was_connected:
                log.bind(endpoint=str(self._endpoint)).warning("disconnected from puppet service")

    async def _read(self, stub: PuppetStub, stream: AsyncIterator[EventResponse]) -> None:
        async for response in stream:
            await self._handle(stub, response)

    async def _ping(self, stub: PuppetStub) -> None:
        # A half-open TCP connection delivers nothing and raises nothing; a ding that goes
        # unanswered is how we notice.
        while True:
            await asyncio.sleep(self._keepalive)
            await _within(stub.ding(data="qunfu"), self._call_timeout)

    def _close_channel(self) -> None:
        self._stub = None
        self._update_ready()
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _connected_stub(self) -> PuppetStub:
        stub = self._stub
        if stub is None:
            raise GatewayError(f"not connected to the puppet service at {self._endpoint}")
        return stub

    async def _call(self, call: Awaitable[_T], what: str, *, changes: bool = False) -> _T:
        """Await one RPC; every failure becomes a GatewayError the outbox understands.

        ``changes`` marks a call that acts on the platform (say, invite, remove): if the
        connection breaks while it is in flight the service may already have acted, so that is
        :class:`DeliveryUnknown`, never to be retried blindly.
        """
        try:
            return await _within(call, self._call_timeout)
        except GRPCError as err:
            # The service answered with an error status: it did not act.
            raise GatewayError(
                f"{what} refused by the puppet service: "
                f"{err.status.name} {err.message or ''}".rstrip()
            ) from err
        except ConnectionRefusedError as err:
            raise GatewayError(f"{what} failed: the puppet service refused the connection") from err
        except Exception as err:  # noqa: BLE001 - the outbox only knows GatewayError
            # A dropped connection surfaces as grpclib, h2 or socket errors depending on when
            # it broke; for a read that means "try again later", for an action "maybe done".
            error = DeliveryUnknown if changes else GatewayError
            raise error(f"{what} failed: {type(err).__name__}: {err}") from err

    # -- translation ----------------------------------------------------------------------

    async def _handle(self, stub: PuppetStub, response: EventResponse) -> None:
        self._last_event_at = self._clock.now()
        kind = int(response.type)
        try:
            payload = json.loads(response.payload or "{}")
        except json.JSONDecodeError:
            log.bind(event=kind).warning("event payload is not JSON; dropped")
            return
        if not isinstance(payload, dict):
            log.bind(event=kind).warning("event payload is not an object; dropped")
            return
        try:
            event = await self._translate(stub, kind, payload)
        except _NETWORK_ERRORS as err:
            log.bind(event=kind, error=type(err).__name__).warning(
                "could not fetch the payloads of an event; dropped"
            )
            if not isinstance(err, GRPCError):
                raise
            return
        if event is not None:
            await self._queue.put(self._domain_rooms(event))

    async def _translate(
        self, stub: PuppetStub, kind: int, payload: dict[str, Any]
    ) -> Event | None:
        if kind == EventType.EVENT_TYPE_MESSAGE:
            return await self._message(stub, str(payload.get("messageId") or ""))
        if kind == EventType.EVENT_TYPE_ROOM_JOIN:
            return await self._join(stub, payload)
        if kind == EventType.EVENT_TYPE_ROOM_LEAVE:
            return self._leave(payload)
        if kind == EventType.EVENT_TYPE_FRIENDSHIP:
            await self._friendship(stub, str(payload.get("friendshipId") or ""))
        elif kind == EventType.EVENT_TYPE_LOGIN:
            self._login(str(payload.get("contactId") or ""))
        elif kind == EventType.EVENT_TYPE_LOGOUT:
            self._logged_in.clear()
            self._update_ready()
            log.warning("bot account logged out of the puppet service")
        elif kind == EventType.EVENT_TYPE_SCAN:
            log.bind(status=payload.get("status")).warning(
                "puppet service waits for a QR code scan to log the bot account in"
            )
        elif kind == EventType.EVENT_TYPE_ERROR:
            log.bind(detail=str(payload.get("data", ""))[:200]).warning("puppet service error")
        return None

    def _login(self, contact_id: str) -> None:
        if not contact_id:
            log.warning("login event without a contact id; ignored")
            return
        if self.bot_id and self.bot_id != contact_id:
            log.bind(hint=_ref(self.bot_id), actual=_ref(contact_id)).warning(
                "logged-in account differs from the configured bot id; using the account"
            )
        self._self_id = self.bot_id = contact_id
        self._logged_in.set()
        self._update_ready()
        log.bind(bot=_ref(contact_id)).info("bot account logged in")

    def _is_self(self, contact_id: str) -> bool:
        return contact_id == (self._self_id or self.bot_id)

    async def _message(self, stub: PuppetStub, message_id: str) -> Event | None:
        if not message_id:
            log.warning("message event without a message id; dropped")
            return None
        try:
            msg = await _within(stub.message_payload(id=message_id), self._call_timeout)
        except GRPCError as err:
            log.bind(message=_ref(message_id), status=err.status.name).warning(
                "message payload missing; dropped"
            )
            return None
        talker, room_id = msg.from_id, msg.room_id or None
        if not talker:
            log.bind(message=_ref(message_id)).warning("message without a sender; dropped")
            return None
        if self._is_self(talker):
            log.bind(message=_ref(message_id)).debug("own message came back; ignored")
            return None
        name = await self._name(stub, talker)
        if name is None:
            log.bind(contact=_ref(talker), room=_ref(room_id or "")).warning(
                "message from an unknown contact; dropped"
            )
            return None
        sender, at = Person(talker, name), self._clock.now()
        kind = int(msg.type)
        if kind in _CARD_KINDS and room_id is None:
            # Only group moderation reads cards; privately nothing answers one (as before).
            log.bind(message=_ref(message_id), type=kind).debug("private card or image; dropped")
            return None
        if kind == wire.MESSAGE_TEXT or kind in _CARD_KINDS:
            card = _CARD_KINDS.get(kind, "text")
            text = msg.text
            if card == "link_card":
                text = link_card_text(await self._url_link(stub, message_id), msg.text)
            elif card != "text":
                text = ""  # a contact card's or image's payload text is platform XML, not words
            received = MessageReceived(
                at=at,
                sender=sender,
                text=text,
                room_id=room_id,
                mentions=tuple(msg.mention_ids),
                message_id=msg.id or message_id,
                kind=card,
            )
            if card == "image":
                return self._start_scan(stub, received)
            return received
        if kind == wire.MESSAGE_LOCATION:
            try:
                pin = wire.parse_location(msg.text)
            except ValueError as err:
                log.bind(message=_ref(message_id), reason=str(err)).warning(
                    "malformed location message; dropped"
                )
                return None
            return LocationShared(
                at=at,
                sender=sender,
                lat=pin.lat,
                lon=pin.lon,
                crs="gcj02",
                room_id=room_id,
                label=pin.label,
            )
        log.bind(message=_ref(message_id), type=kind).debug("message type not handled; dropped")
        return None

    # -- images ---------------------------------------------------------------------------

    def _start_scan(self, stub: PuppetStub, event: MessageReceived) -> MessageReceived | None:
        """Scan a group image for a QR code in the background, or hand it on as it is.

        The scan runs beside the event stream, not in it: one slow download must not hold up
        every message behind it. So an image may reach the domain after messages that followed
        it; the returned None means the scan task queues the event itself, always (as "image"
        when the scan fails). Past the backlog the image goes on unscanned.
        """
        assert event.room_id is not None
        group = self._from_platform.get(event.room_id, event.room_id)
        if self._scan_wanted is not None and not self._scan_wanted(group, event.sender.id):
            return event
        ref = _ref(event.message_id)
        if len(self._scans) >= self._images.backlog:
            log.bind(message=ref, backlog=len(self._scans)).warning(
                "image scan backlog full; image left unscanned"
            )
            return event
        task = asyncio.create_task(self._scan(stub, event), name=f"wechaty-image-{ref}")
        self._scans.add(task)
        task.add_done_callback(self._scans.discard)
        return None

    async def _scan(self, stub: PuppetStub, event: MessageReceived) -> None:
        """Fetch and decode the picture, then queue the event as "image_qr" or "image"."""
        kind: MessageKind = "image"
        where = log.bind(message=_ref(event.message_id), room=_ref(event.room_id or ""))
        try:
            async with self._scan_slots:
                async with asyncio.timeout(self._images.timeout):
                    scan = await scan_message_image(stub, event.message_id, self._images)
            if scan.found:
                kind = "image_qr"
                where.bind(codes=len(scan.texts)).info("QR code found in a group image")
            elif scan.error:
                where.bind(reason=scan.error).warning("group image not decoded; left as image")
        except asyncio.CancelledError:
            raise
        except GRPCError as err:
            where.bind(reason=f"{err.status.name} {err.message or ''}".strip()).warning(
                "group image not fetched; left as image"
            )
        except TimeoutError:
            where.bind(reason=f"over {self._images.timeout:g}s").warning(
                "group image not fetched in time; left as image"
            )
        except Exception as err:  # noqa: BLE001 - a picture must never cost the message
            where.bind(reason=f"{type(err).__name__}: {err}"[:200]).warning(
                "group image not fetched; left as image"
            )
        # The decoded text stays out of the event: nothing downstream may repeat it.
        await self._queue.put(self._domain_rooms(dataclasses.replace(event, kind=kind)))

    async def _url_link(self, stub: PuppetStub, message_id: str) -> str:
        """The link card's payload as the service gives it (a JSON object), "" when it cannot."""
        try:
            response = await _within(stub.message_url(id=message_id), self._call_timeout)
        except GRPCError as err:
            log.bind(message=_ref(message_id), status=err.status.name).warning(
                "link card payload missing; its text is read instead"
            )
            return ""
        return response.url_link

    async def _name(self, stub: PuppetStub, contact_id: str) -> str | None:
        """The contact's display name, or None when the service does not know the contact."""
        if contact_id in self._names:
            self._names.move_to_end(contact_id)
            return self._names[contact_id]
        try:
            contact = await _within(stub.contact_payload(id=contact_id), self._call_timeout)
        except GRPCError:
            return None
        name = str(contact.name)
        self._names[contact_id] = name
        if len(self._names) > _NAME_CACHE_SIZE:
            self._names.popitem(last=False)
        return name

    async def _join(self, stub: PuppetStub, payload: dict[str, Any]) -> Event | None:
        room_id = str(payload.get("roomId") or "")
        invitees = [str(i) for i in payload.get("inviteeIdList") or [] if i]
        if not room_id or not invitees:
            log.warning("room-join event without room or members; dropped")
            return None
        try:
            await _within(stub.room_payload(id=room_id), self._call_timeout)
        except GRPCError as err:
            log.bind(room=_ref(room_id), status=err.status.name).warning(
                "room-join for an unknown room; dropped"
            )
            return None
        members = []
        for member_id in invitees:
            if self._is_self(member_id):
                log.bind(room=_ref(room_id)).info("bot account joined a room")
                continue
            name = await self._name(stub, member_id)
            if name is None:
                log.bind(room=_ref(room_id), contact=_ref(member_id)).warning(
                    "joined member unknown to the service; welcomed without a name"
                )
            members.append(Person(member_id, name or ""))
        if not members:
            return None
        inviter = str(payload.get("inviterId") or "") or None
        return MemberJoined(
            at=self._clock.now(), room_id=room_id, members=tuple(members), inviter_id=inviter
        )

    def _leave(self, payload: dict[str, Any]) -> Event | None:
        room_id = str(payload.get("roomId") or "")
        removed = [str(i) for i in payload.get("removeeIdList") or [] if i]
        if not room_id or not removed:
            log.warning("room-leave event without room or members; dropped")
            return None
        if any(self._is_self(i) for i in removed):
            log.bind(room=_ref(room_id)).warning("bot account left or was removed from a room")
        members = tuple(i for i in removed if not self._is_self(i))
        if not members:
            return None
        return MemberLeft(at=self._clock.now(), room_id=room_id, member_ids=members)

    async def _friendship(self, stub: PuppetStub, friendship_id: str) -> None:
        if not friendship_id:
            log.warning("friendship event without an id; ignored")
            return
        try:
            request = await _within(stub.friendship_payload(id=friendship_id), self._call_timeout)
        except GRPCError as err:
            log.bind(status=err.status.name).warning("friendship payload missing; ignored")
            return
        if int(request.type) != wire.FRIENDSHIP_RECEIVE:
            return
        who = _ref(request.contact_id)
        if not self._accept_friendships:
            log.bind(contact=who).info("friendship request left pending (auto-accept is off)")
            return
        await _within(stub.friendship_accept(id=friendship_id), self._call_timeout)
        log.bind(contact=who).info("friendship request accepted")
