"""The simulator page (``GET /sim``): play cardholders in a browser and watch the groups.

Everything goes through the running bot's :class:`SimulatorGateway` (``app.state.bot.gateway``),
exactly as the terminal console does: what a person does here becomes a gateway event that
``Qunfu.run_forever`` consumes, and what the bot does comes back through the gateway's
transcript. The page polls ``/sim/api/feed`` for new chat lines and ``/sim/api/state`` for the
rooms, members and the bot's clock.

Bad input is a 4xx JSON answer ``{"error": "<Chinese message>"}`` that the page shows as it is;
nothing a person types here can stop the bot. Handlers are ``async`` on purpose: the gateway is
not thread-safe and must only be touched from the event loop the bot runs on.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from loguru import logger

from bot.events import (
    Crs,
    Event,
    Invite,
    LocationShared,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    Person,
    Remove,
    Say,
    SentAction,
    parse_conv,
)
from bot.gateways.simulator import SimulatorGateway
from bot.routing import to_wgs84
from scheduler.clock import SHANGHAI

router = APIRouter()

_STATIC = Path(__file__).parent / "static"
_ASSETS = {"sim.js": "text/javascript; charset=utf-8", "sim.css": "text/css; charset=utf-8"}
_CONTACT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_MAX_NAME = 32
_MAX_TEXT = 2000
_FEED_KEEP = 5000
_MEMBERS_SHOWN = 200  # per room in a state poll; members_total gives the whole count
_CRS = ("gcj02", "wgs84", "bd09")

Json = dict[str, Any]


class SimInputError(Exception):
    """Input the page can explain to the person: an HTTP status and a Chinese message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _guarded(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn :class:`SimInputError` into a 4xx JSON answer and anything else into a logged 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except SimInputError as exc:
            logger.bind(status=exc.status).info("simulator page input rejected: {}", exc.message)
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except Exception as exc:  # the page must never take the bot down
            logger.opt(exception=exc).error("simulator page failed: {}", exc)
            return JSONResponse(
                {"error": "模拟器内部出错，已记录日志，请稍后重试。"}, status_code=500
            )

    return wrapper


# --- the chat feed: what people did and what the bot did, in order ------------------------------


class SimFeed:
    """Numbered chat lines for the page, built from the gateway's inputs and transcript.

    Attached lazily on the first request; what happened before is replayed in time order, and
    from then on lines arrive in the exact order the gateway saw them.
    """

    def __init__(self, gateway: SimulatorGateway) -> None:
        self._gateway = gateway
        self.items: list[Json] = []
        self.seq = 0
        backlog: list[tuple[Any, int, int, Event | SentAction]] = []
        backlog += [(e.at, 0, i, e) for i, e in enumerate(gateway.inputs)]
        backlog += [(s.at, 1, i, s) for i, s in enumerate(gateway.transcript)]
        for _at, kind, _i, thing in sorted(backlog, key=lambda t: (t[0], t[1], t[2])):
            if kind == 0:
                self.add_event(thing)  # type: ignore[arg-type]
            else:
                self.add_action(thing)  # type: ignore[arg-type]
        gateway.on_event(self.add_event)
        gateway.on_action(self.add_action)

    def after(self, seq: int) -> list[Json]:
        """Lines numbered above ``seq``."""
        return [item for item in self.items if item["seq"] > seq]

    def add_event(self, event: Event) -> None:
        """Record something a person did."""
        try:
            self._push(self._event_line(event))
        except Exception as exc:  # a display problem must not break the gateway's caller
            logger.opt(exception=exc).warning("simulator feed skipped an event: {}", exc)

    def add_action(self, sent: SentAction) -> None:
        """Record something the bot did."""
        try:
            self._push(self._action_line(sent))
        except Exception as exc:
            logger.opt(exception=exc).warning("simulator feed skipped an action: {}", exc)

    def _push(self, line: Json) -> None:
        self.seq += 1
        line["seq"] = self.seq
        self.items.append(line)
        if len(self.items) > _FEED_KEEP:
            del self.items[: len(self.items) - _FEED_KEEP]

    def _who(self, contact_id: str) -> Json:
        person = self._gateway.contacts.get(contact_id)
        return {"id": contact_id, "name": person.name if person and person.name else contact_id}

    def _room_name(self, room_id: str) -> str:
        room = self._gateway.rooms.get(room_id)
        return room.name if room else room_id

    def _event_line(self, event: Event) -> Json:
        at = _iso(event.at)
        if isinstance(event, MessageReceived):
            return {
                "at": at,
                "by": "person",
                "kind": "message",
                "conv": _conv(event.room_id, event.sender.id),
                "sender": _person(event.sender),
                "text": event.text,
                "mentions": [self._who(m) for m in event.mentions],
            }
        if isinstance(event, LocationShared):
            return {
                "at": at,
                "by": "person",
                "kind": "location",
                "conv": _conv(event.room_id, event.sender.id),
                "sender": _person(event.sender),
                "text": f"📍 位置 {event.lat:.6f}, {event.lon:.6f}（{event.crs}）",
                "lat": event.lat,
                "lon": event.lon,
                "crs": event.crs,
                "mentions": [],
            }
        if isinstance(event, MemberJoined):
            names = "、".join(p.name or p.id for p in event.members)
            inviter = (
                f"（由 {self._who(event.inviter_id)['name']} 邀请）" if event.inviter_id else ""
            )
            return {
                "at": at,
                "by": "system",
                "kind": "join",
                "conv": f"room:{event.room_id}",
                "members": [_person(p) for p in event.members],
                "text": f"{names} 加入了群聊{inviter}",
                "mentions": [],
            }
        if isinstance(event, MemberLeft):
            people = [self._who(m) for m in event.member_ids]
            return {
                "at": at,
                "by": "system",
                "kind": "leave",
                "conv": f"room:{event.room_id}",
                "members": people,
                "text": f"{'、'.join(p['name'] for p in people)} 退出了群聊",
                "mentions": [],
            }
        raise TypeError(f"unknown event {event!r}")

    def _action_line(self, sent: SentAction) -> Json:
        at = _iso(sent.at)
        bot = self._who(self._gateway.bot_id)
        a = sent.action
        if isinstance(a, Say):
            parse_conv(a.to)
            return {
                "at": at,
                "by": "bot",
                "kind": "message",
                "conv": a.to,
                "sender": bot,
                "text": a.text,
                "mentions": [self._who(m) for m in a.mentions],
            }
        if isinstance(a, Invite):
            return {
                "at": at,
                "by": "bot",
                "kind": "invite",
                "conv": f"contact:{a.contact}",
                "sender": bot,
                "room": a.room,
                "room_name": self._room_name(a.room),
                "text": f"邀请你加入群聊「{self._room_name(a.room)}」",
                "mentions": [],
            }
        if isinstance(a, Remove):
            return {
                "at": at,
                "by": "system",
                "kind": "remove",
                "conv": f"room:{a.room}",
                "members": [self._who(a.contact)],
                "text": f"{bot['name']} 将 {self._who(a.contact)['name']} 移出了群聊",
                "mentions": [],
            }
        raise TypeError(f"unknown action {a!r}")


def _conv(room_id: str | None, contact_id: str) -> str:
    return f"room:{room_id}" if room_id is not None else f"contact:{contact_id}"


def _person(p: Person) -> Json:
    return {"id": p.id, "name": p.name or p.id}


def _iso(at: Any) -> str:
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds")


# --- access to the running bot --------------------------------------------------------------------


def _bot(request: Request) -> Any:
    return request.app.state.bot


def _gateway(request: Request) -> SimulatorGateway:
    gateway = getattr(_bot(request), "gateway", None)
    if not isinstance(gateway, SimulatorGateway):
        raise SimInputError(404, "模拟器页面只在模拟器网关（gateway: simulator）下可用。")
    return gateway


def _feed(request: Request) -> SimFeed:
    gateway = _gateway(request)
    feed: SimFeed | None = getattr(request.app.state, "sim_feed", None)
    if feed is None or feed._gateway is not gateway:
        feed = SimFeed(gateway)
        request.app.state.sim_feed = feed
    return feed


def _contacts(gateway: SimulatorGateway) -> list[Json]:
    return [_person(p) for p in gateway.contacts.values() if p.id != gateway.bot_id]


def _rooms(request: Request, gateway: SimulatorGateway) -> list[Json]:
    bot = _bot(request)
    groups = bot.planner().ops.groups
    counts = bot.member_counts.member_counts()  # in memory: no database read per poll
    out = []
    ordered = [gid for gid in groups if gid in gateway.rooms] + [
        rid for rid in gateway.rooms if rid not in groups
    ]
    for room_id in ordered:
        room = gateway.rooms[room_id]
        group = groups.get(room_id)
        # A room restored lazily is not read for a poll (a million people at bank scale), and a
        # big one shows its first members only; ``members_total`` says how many it holds.
        ids = sorted(room.members) if room.loaded else []
        members = [_person(gateway.contacts.get(m, Person(m, m))) for m in ids[:_MEMBERS_SHOWN]]
        line: Json = {
            "id": room_id,
            "name": room.name,
            "members": members,
            "members_total": len(ids),
            "member_count": counts.get(room_id, 0),
            "city": group.city if group else "",
            "district": group.district if group else "",
            "capacity": group.capacity if group else None,
            "location": None,
        }
        if group is not None:
            lat, lon = to_wgs84(group.location.lat, group.location.lon, group.location.crs)
            line["location"] = {"lat": round(lat, 6), "lon": round(lon, 6), "crs": "wgs84"}
        out.append(line)
    return out


# --- input checks, with messages for people ------------------------------------------------------


async def _body(request: Request) -> Json:
    try:
        data = await request.json()
    except Exception:
        raise SimInputError(400, "请求格式不正确：应为 JSON 对象。") from None
    if not isinstance(data, dict):
        raise SimInputError(400, "请求格式不正确：应为 JSON 对象。")
    return data


def _text_field(data: Json, key: str, label: str, limit: int, required: bool = True) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SimInputError(422, f"{label}应为文字。")
    value = value.strip()
    if required and not value:
        raise SimInputError(422, f"请填写{label}。")
    if len(value) > limit:
        raise SimInputError(422, f"{label}最多 {limit} 个字。")
    return value


def _known_contact(gateway: SimulatorGateway, data: Json) -> Person:
    contact_id = data.get("contact")
    if not isinstance(contact_id, str) or not contact_id:
        raise SimInputError(422, "请先选择或添加一个人物（contact）。")
    person = gateway.contacts.get(contact_id)
    if person is None or contact_id == gateway.bot_id:
        raise SimInputError(404, f"没有这个人物：{contact_id[:40]}，请先添加。")
    return person


def _known_room(gateway: SimulatorGateway, data: Json, required: bool = True) -> str | None:
    room_id = data.get("room")
    if room_id in (None, "") and not required:
        return None
    if not isinstance(room_id, str) or not room_id:
        raise SimInputError(422, "请先选择一个群（room）。")
    if room_id not in gateway.rooms:
        raise SimInputError(404, f"没有这个群：{room_id[:60]}。")
    return room_id


def _coordinate(value: Any, label: str, limit: float) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise SimInputError(422, f"请填写{label}（-{limit:g} 到 {limit:g} 之间的数字）。")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise SimInputError(
            422, f"{label}应为数字（-{limit:g} 到 {limit:g}），收到的是：{str(value)[:40]}"
        ) from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise SimInputError(422, f"{label}应在 -{limit:g} 到 {limit:g} 之间。")
    return number


# --- routes -------------------------------------------------------------------------------------


@router.get("/sim", include_in_schema=False)
async def simulator_page() -> Response:
    """The page itself (static HTML; data comes from the JSON API)."""
    return FileResponse(
        _STATIC / "sim.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/sim/static/{name}", include_in_schema=False)
async def simulator_asset(name: str) -> Response:
    """The page's script and style sheet."""
    if name not in _ASSETS:
        return JSONResponse({"error": "没有这个文件。"}, status_code=404)
    return FileResponse(
        _STATIC / name, media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"}
    )


@router.get("/sim/api/state")
@_guarded
async def sim_state(request: Request) -> Json:
    """Rooms (simulated members and live member counts), contacts, the bot's clock, feed number."""
    gateway = _gateway(request)
    feed = _feed(request)
    bot = _bot(request)
    return {
        "now": _iso(bot.clock.now()),
        "bot": {"id": gateway.bot_id, "name": gateway.bot_name},
        "rooms": _rooms(request, gateway),
        "contacts": _contacts(gateway),
        "seq": feed.seq,
    }


@router.get("/sim/api/rooms")
@_guarded
async def sim_rooms(request: Request) -> list[Json]:
    """The rooms, as in ``/sim/api/state``."""
    return _rooms(request, _gateway(request))


@router.get("/sim/api/contacts")
@_guarded
async def sim_contacts(request: Request) -> list[Json]:
    """The people the simulator knows (the bot excluded)."""
    return _contacts(_gateway(request))


@router.get("/sim/api/feed")
@_guarded
async def sim_feed(request: Request) -> Json:
    """Chat lines numbered above ``after`` (people and bot, every conversation), and the clock."""
    raw = request.query_params.get("after", "0")
    try:
        after = int(raw)
    except ValueError:
        raise SimInputError(422, "after 应为整数。") from None
    feed = _feed(request)
    return {"items": feed.after(after), "seq": feed.seq, "now": _iso(_bot(request).clock.now())}


@router.post("/sim/api/contacts", status_code=201)
@_guarded
async def sim_add_contact(request: Request) -> Json:
    """A new person: ``{"name": "张三"}`` (an ``id`` is chosen unless given)."""
    gateway = _gateway(request)
    data = await _body(request)
    name = _text_field(data, "name", "昵称", _MAX_NAME)
    contact_id = data.get("id")
    if contact_id in (None, ""):
        n = len(gateway.contacts)
        while f"u{n}" in gateway.contacts:
            n += 1
        contact_id = f"u{n}"
    elif not isinstance(contact_id, str) or not _CONTACT_ID.match(contact_id):
        raise SimInputError(422, "人物 id 只能由字母、数字、_ . - 组成，最多 32 个字符。")
    elif contact_id in gateway.contacts:
        raise SimInputError(409, f"人物 id {contact_id} 已存在。")
    _feed(request)
    return _person(gateway.add_contact(contact_id, name))


async def _member_request(request: Request) -> tuple[SimulatorGateway, Person, str]:
    """The gateway, the known person and the known room of a ``{contact, room}`` body."""
    gateway = _gateway(request)
    data = await _body(request)
    person = _known_contact(gateway, data)
    room_id = _known_room(gateway, data)
    assert room_id is not None
    return gateway, person, room_id


@router.post("/sim/api/join")
@_guarded
async def sim_join(request: Request) -> Json:
    """``{"contact": ID, "room": ID}``: the person joins the group (as if by scanning its QR)."""
    gateway, person, room_id = await _member_request(request)
    if person.id in gateway.rooms[room_id].members:
        raise SimInputError(409, f"{person.name or person.id} 已经在这个群里了。")
    _feed(request)
    gateway.join(room_id, [person.id])
    return {"ok": True}


@router.post("/sim/api/leave")
@_guarded
async def sim_leave(request: Request) -> Json:
    """``{"contact": ID, "room": ID}``: the person leaves the group."""
    gateway, person, room_id = await _member_request(request)
    if person.id not in gateway.rooms[room_id].members:
        raise SimInputError(409, f"{person.name or person.id} 不在这个群里。")
    _feed(request)
    gateway.leave(room_id, [person.id])
    return {"ok": True}


@router.post("/sim/api/say")
@_guarded
async def sim_say(request: Request) -> Json:
    """``{"contact", "text", "room"?, "mention_bot"?}``; without a room it is a private message.

    In a room, the bot is @-mentioned when ``mention_bot`` is true or the text contains
    ``@群福助手``; the text then starts with ``@群福助手`` as WeChat would show it.
    """
    gateway = _gateway(request)
    data = await _body(request)
    person = _known_contact(gateway, data)
    room_id = _known_room(gateway, data, required=False)
    text = _text_field(data, "text", "要说的话", _MAX_TEXT)
    at_bot = f"@{gateway.bot_name}"
    mentions: list[str] = []
    if room_id is not None:
        if person.id not in gateway.rooms[room_id].members:
            raise SimInputError(409, f"{person.name or person.id} 还不在这个群里，请先加入本群。")
        if data.get("mention_bot") is True or at_bot in text:
            mentions = ["bot"]
            if at_bot not in text:
                text = f"{at_bot} {text}"
    _feed(request)
    gateway.say(person.id, text, room_id, mentions)
    return {"ok": True}


@router.post("/sim/api/location")
@_guarded
async def sim_location(request: Request) -> Json:
    """``{"contact", "lat", "lon", "crs"?}``: share a location privately with the bot."""
    gateway = _gateway(request)
    data = await _body(request)
    person = _known_contact(gateway, data)
    lat = _coordinate(data.get("lat"), "纬度", 90)
    lon = _coordinate(data.get("lon"), "经度", 180)
    crs = data.get("crs") or "gcj02"
    if not isinstance(crs, str) or crs not in _CRS:
        raise SimInputError(422, "坐标系应为 gcj02（微信/高德）、wgs84（GPS）或 bd09（百度）。")
    _feed(request)
    gateway.share_location(person.id, lat, lon, cast(Crs, crs))
    return {"ok": True}
