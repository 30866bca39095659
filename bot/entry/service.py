"""The live-code entry path as a service: visit, locate, offer groups, choose one, show its code.

The web router (bot/web/entry.py) is a thin shell over :class:`EntryService`; every refusal is
an :class:`~bot.entry.errors.EntryError` with a Chinese message.

The async methods never do database work on the event loop: each request's placement and
writes run in one worker thread (``asyncio.to_thread``). A route request writes its visit once
(a new visit is inserted already located; a second try is one UPDATE), and member counts come
from :class:`~bot.entry.seats.MemberCounts` in memory, never from a read of every group.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from geopy.geocoders.base import Geocoder
from loguru import logger

from bot.config import EntrySettings
from bot.entry.channels import normalise_channel, resolve_channel
from bot.entry.errors import EntryError, bad_request, conflict, not_found
from bot.entry.geocoding import Gazetteer
from bot.entry.joins import INVITE_ALPHABET, INVITE_CODE_LEN
from bot.entry.locating import locate_address
from bot.entry.overflow import Area, OverflowPlacement, Placement, district_area, grid_area
from bot.entry.qrcodes import GroupQrCodes, render_png, render_svg
from bot.entry.referral_codes import ReferralCodes
from bot.entry.requests import RouteRequest
from bot.entry.seats import MemberCounts
from bot.opsdata.bundle import OpsData
from bot.routing import to_wgs84
from bot.templating import distance, radius_text
from db.entry_repositories import EntryRepo, Located, NewVisit
from db.models import EntryVisit
from scheduler.clock import Clock


@dataclass(frozen=True)
class GroupOffer:
    """A group offered to a visitor; ``join`` is ``qr`` (scan) or ``invite`` (message the bot)."""

    group_id: str
    name: str
    city: str
    district: str
    distance_m: float
    members: int
    capacity: int
    join: str


@dataclass(frozen=True)
class RouteAnswer:
    """Where the visitor was placed and the groups offered, nearest first."""

    entry: str
    channel: str
    how: str
    label: str
    lat: float
    lon: float
    area: str
    overflow: bool
    radius_m: float
    offers: list[GroupOffer]
    nearby: str = "room"
    full_nearby: int = 0
    notice: str | None = None


@dataclass(frozen=True)
class Choice:
    """A group chosen: scan its QR code, or send the bot the invite code."""

    entry: str
    group_id: str
    name: str
    join: str
    invite_code: str | None = None
    hint: str | None = None


class EntryService:
    """Visits, routing with overflow, group choice and QR codes for the live-code page."""

    def __init__(
        self,
        *,
        ops: Callable[[], OpsData],
        gazetteer: Callable[[], Gazetteer],
        geocoder: Callable[[], Geocoder],
        visits: EntryRepo,
        referrals: ReferralCodes,
        placement: OverflowPlacement,
        qrcodes: GroupQrCodes,
        counts: MemberCounts,
        clock: Clock,
        settings: EntrySettings,
        bot_name: str,
    ) -> None:
        self._ops = ops
        self._gazetteer = gazetteer
        self._geocoder = geocoder
        self._visits = visits
        self._referrals = referrals
        self._placement = placement
        self._qrcodes = qrcodes
        self._counts = counts
        self._clock = clock
        self._settings = settings
        self._bot_name = bot_name

    @property
    def gazetteer(self) -> Gazetteer:
        return self._gazetteer()

    # --- visit -----------------------------------------------------------------------------

    async def visit(self, channel_id: object, ref: object = None) -> NewVisit:
        """:meth:`open_visit` off the event loop."""
        return await asyncio.to_thread(self.open_visit, channel_id, ref)

    def open_visit(
        self, channel_id: object, ref: object = None, located: Located | None = None
    ) -> NewVisit:
        """Record a page visit from a live-code link (channel and referral code checked), located
        already when ``located`` is given. Database work: call from a worker thread."""
        channel = resolve_channel(self._ops().channels, channel_id)
        return self._record_visit(channel.id, self._referral(ref), located)

    def _referral(self, ref: object) -> tuple[str, str] | None:
        """``(code, referrer)`` for a referral code, None without one; a refusal when invalid.

        A forged, malformed or never-issued code is refused (4xx with a Chinese reason, as
        issue 3 requires): attributing it to nobody would silently lose a referrer's reward,
        and the page's refusal says to open the link again or use the bank's own entry.
        """
        if ref is None or ref == "":
            return None
        return str(ref).strip().upper(), self._referrals.verify(ref)

    def _record_visit(
        self, channel: str, referral: tuple[str, str] | None, located: Located | None
    ) -> NewVisit:
        visit_id = secrets.token_urlsafe(12)
        code, referrer = referral if referral is not None else (None, None)
        visit = self._visits.create(
            visit_id,
            channel,
            self._clock.now(),
            ref_code=code,
            referrer_id=referrer,
            located=located,
        )
        logger.bind(entry=visit_id, channel=channel, referral=referrer is not None).info(
            "entry: page visit"
        )
        return visit

    def _check_entry(self, req: RouteRequest) -> None:
        """Why ``req.entry`` cannot be used (a refusal), or nothing when it can."""
        assert req.entry is not None
        channel = self._visits.channel_of(req.entry)
        if channel is None:
            raise bad_request("unknown_entry", "访问已失效，请刷新页面后重试。")
        if channel != req.channel:
            raise bad_request("entry_channel_mismatch", "访问编号与渠道不符，请刷新页面后重试。")

    def _unplaced(self, req: RouteRequest) -> None:
        """A request that could not be placed still counts: a new visit is recorded, a given
        entry is checked (its refusal comes before the location's, as the page expects)."""
        if req.entry is None:
            self.open_visit(req.channel, req.ref)
        else:
            self._check_entry(req)

    def _visit(self, entry_id: object) -> EntryVisit:
        if not isinstance(entry_id, str) or not entry_id:
            raise bad_request("missing_entry", "页面信息不完整，请刷新页面后重试。")
        visit = self._visits.get(entry_id)
        if visit is None:
            raise bad_request("unknown_entry", "访问已失效，请刷新页面后重试。")
        return visit

    # --- route -----------------------------------------------------------------------------

    async def route(self, req: RouteRequest) -> RouteAnswer:
        """Locate the visitor and offer the nearest groups with room (overflow rule applies)."""
        # A retyped link (``WX-MENU``, ``sms-alert。``) names its channel canonically from here on.
        req = replace(req, channel=normalise_channel(req.channel))
        if req.entry is None:
            resolve_channel(self._ops().channels, req.channel)  # in memory: refuse early
        try:
            lat, lon, crs, label, area = await self._locate(req)
        except EntryError:
            await asyncio.to_thread(self._unplaced, req)
            raise
        return await asyncio.to_thread(self._place, req, lat, lon, crs, label, area)

    def _place(
        self, req: RouteRequest, lat: float, lon: float, crs: str, label: str, area: Area
    ) -> RouteAnswer:
        """Placement and the visit's one write (worker thread)."""
        # A new visit's referral code is checked first: a refused link places nobody.
        referral = self._referral(req.ref) if req.entry is None else None
        try:
            placed = self._placement.place(lat, lon, crs, area)
            wlat, wlon = to_wgs84(lat, lon, crs)
        except ValueError as exc:
            self._unplaced(req)
            raise bad_request(
                "bad_location", "无法识别这个位置，请重新定位或选择城市和区域。"
            ) from exc
        located = Located(req.how, wlat, wlon, area.key, placed.overflow)
        if req.entry is None:
            channel = resolve_channel(self._ops().channels, req.channel).id
            visit_id = self._record_visit(channel, referral, located).id
        elif self._visits.relocate(req.entry, req.channel, self._clock.now(), located):
            visit_id, channel = req.entry, req.channel
        else:
            self._check_entry(req)  # raises: unknown, or of another channel
            raise bad_request("unknown_entry", "访问已失效，请刷新页面后重试。")
        offers = [
            GroupOffer(
                r.group.id,
                r.group.name,
                r.group.city,
                r.group.district,
                round(r.distance_m),
                r.members,
                r.group.capacity,
                "invite" if r.members >= self._settings.scan_limit else "qr",
            )
            for r in placed.results
        ]
        logger.bind(
            entry=visit_id,
            channel=channel,
            how=req.how,
            area=area.key,
            overflow=placed.overflow,
            offered=len(offers),
        ).info("entry: location given")
        return RouteAnswer(
            visit_id,
            channel,
            req.how,
            label,
            round(wlat, 5),
            round(wlon, 5),
            area.label,
            placed.overflow,
            self._placement.radius_m,
            offers,
            placed.nearby,
            placed.full_nearby,
            self._notice(placed),
        )

    def _notice(self, placed: Placement) -> str | None:
        """What the page says when nothing within the radius can take the visitor.

        The page does not know who the visitor is, so it cannot promise a message: it says how
        to get on the waitlist (share the location with the bot in a private chat).
        """
        if not placed.overflow:
            return None
        radius = radius_text(self._placement.radius_m)
        if placed.nearby == "full":
            head = f"您附近{radius}内的{placed.full_nearby}个福利群都已满员"
        else:
            head = f"您附近{radius}内还没有福利群"
        if placed.results:
            nearest = min(r.distance_m for r in placed.results)
            further = f"，以下是离您最近的群（最近的约{distance(nearest)}）。"
        else:
            further = "。"
        waitlist = (
            f"想在附近有群可加入时收到通知，请{self.reach_bot()}，再发送您的位置，"
            "登记后我们会第一时间通知您。"
        )
        return head + further + waitlist

    def reach_bot(self) -> str:
        """How to befriend the bot, worded to go before "再发送…".

        On WeChat a person can only message an account they have added as a friend, so every
        "message the bot" says how to add it: its WeChat id, its contact QR code on the page
        (``entry.bot_contact_qr``), or, with neither configured, searching for it by name.
        """
        name = self._bot_name
        wechat_id = self._settings.bot_wechat_id
        if wechat_id and self._settings.bot_contact_qr:
            return f"先添加「{name}」为好友（微信号：{wechat_id}，或长按识别页面上的二维码）"
        if wechat_id:
            return f"先添加「{name}」为好友（微信号：{wechat_id}）"
        if self._settings.bot_contact_qr:
            return f"先长按识别页面上的二维码，添加「{name}」为好友"
        return f"先在微信中搜索「{name}」并添加为好友"

    async def _locate(self, req: RouteRequest) -> tuple[float, float, str, str, Area]:
        if req.lat is not None and req.lon is not None:
            wlat, wlon = to_wgs84(req.lat, req.lon, req.crs)
            return req.lat, req.lon, req.crs, "您的位置", grid_area(wlat, wlon)
        if req.city is not None and req.district is not None:
            place = self.gazetteer.district(req.city, req.district)
            if place is None:
                raise not_found("unknown_district", "没有找到该城市或区域，请重新选择。")
            loc = place.location
            return loc.lat, loc.lon, loc.crs, place.label, district_area(req.city, req.district)
        assert req.address is not None
        found = await asyncio.to_thread(
            locate_address, self._geocoder(), req.address, crs=self._settings.geocoder_crs
        )
        if found.city and found.district:
            area = district_area(found.city, found.district)
        else:
            area = grid_area(*to_wgs84(found.lat, found.lon, found.crs))
        return found.lat, found.lon, found.crs, found.label, area

    # --- choose ----------------------------------------------------------------------------

    async def choose(self, entry_id: object, group_id: str) -> Choice:
        """Record the group chosen; from ``scan_limit`` members on, it gets an invite code."""
        return await asyncio.to_thread(self._choose, entry_id, group_id)

    def _choose(self, entry_id: object, group_id: str) -> Choice:
        visit = self._visit(entry_id)
        if visit.located_at is None:
            raise conflict("not_located", "请先提供您的位置，再从列表中选择福利群。")
        if visit.joined_at is not None:
            raise conflict("already_joined", "您已经通过本次入口加入了福利群，无需再选择。")
        group = self._ops().groups.get(group_id)
        if group is None:
            raise not_found("unknown_group", "没有找到这个福利群，请重新选择。")
        members = self._counts.get(group_id, group.members)
        if members >= group.capacity:
            raise conflict("group_full", "这个群已满员，请选择列表中的其他群。")
        method = "invite" if members >= self._settings.scan_limit else "qr"
        code = (
            self._new_invite_code()
            if method == "invite" and visit.invite_code is None
            else visit.invite_code
            if method == "invite"
            else None
        )
        visit = self._visits.chosen(visit.id, group_id, self._clock.now(), method, code)
        logger.bind(entry=visit.id, channel=visit.channel, group=group_id, join=method).info(
            "entry: group chosen"
        )
        if method == "qr":
            return Choice(visit.id, group_id, group.name, "qr")
        code = visit.invite_code
        # Invite-only from ``scan_limit`` members on: at exactly 200 the group "已满200人".
        hint = (
            f"该群已满{self._settings.scan_limit}人，无法扫码加入。请{self.reach_bot()}，"
            f"再发送：入群 {code}，{self._bot_name}会邀请您进群。"
        )
        return Choice(visit.id, group_id, group.name, "invite", code, hint)

    def _new_invite_code(self) -> str:
        while True:
            code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_CODE_LEN))
            if not self._visits.invite_code_taken(code):
                return code

    async def qr_svg(self, group_id: str, entry_id: object) -> str:
        """The group's join QR code as SVG; records the choice. 409 for invite-only groups."""
        return await asyncio.to_thread(render_svg, await self._qr_payload(group_id, entry_id))

    async def qr_png(self, group_id: str, entry_id: object) -> bytes:
        """:meth:`qr_svg` as a PNG: an ``<img>`` WeChat's long-press 识别图中二维码 can read."""
        return await asyncio.to_thread(render_png, await self._qr_payload(group_id, entry_id))

    async def _qr_payload(self, group_id: str, entry_id: object) -> str:
        choice = await self.choose(entry_id, group_id)
        if choice.join != "qr":
            raise conflict("invite_only", choice.hint or "该群需要邀请加入。")
        return await self._qrcodes.payload(group_id)
