"""The entry flow in the private chat: location offers, number picks, invite codes, waitlist.

A shared location is always answered (nearest groups with room, or why there are none, and a
place on the waitlist). A number answers the last offer; an invite code from the entry page
invites into the group chosen there. Messages that are neither go on to later handlers.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loguru import logger

from bot.campaigns import CampaignPlanner
from bot.entry.joins import EntryJoins, InviteRequest, looks_like_invite_request
from bot.entry.overflow import OverflowPlacement, Placement, grid_area
from bot.entry.seats import MemberCounts, welfare_groups_of
from bot.entry.waitlist import Waitlist
from bot.events import Action, Event, Invite, LocationShared, MessageReceived, Say, contact_conv
from bot.handlers.base import HandlerContext, event_key
from bot.opsdata.models import WelfareGroup
from bot.privacy import mask
from bot.replies import already_in, format_placement
from bot.routing import GroupIndex, RouteResult, to_wgs84
from db.entry_repositories import Located, SeatsRepo

__all__ = ["EntryFlowHandler", "RouteOffers"]

_PICK = re.compile(r"^\s*(\d{1,2})\s*$")


def _taken(code: str) -> str:
    """The answer to an invite code someone else sent first."""
    return (
        f"入群码 {code} 已由其他微信号使用过。请回到入群页面重新选择福利群，获取您自己的入群码；"
        "或直接发送位置给我。"
    )


@dataclass
class RouteOffers:
    """The last list of groups offered to each person, so "2" means the second one.

    Kept in memory, for ``ttl`` and for the ``limit`` people offered most recently, so a
    million people sharing locations over the months cannot grow it without end; a number sent
    later (or after a restart) is no pick, and a new location gives a new offer.
    """

    ttl: timedelta = timedelta(days=1)
    limit: int = 100_000
    _offers: OrderedDict[str, tuple[datetime, list[str]]] = field(default_factory=OrderedDict)

    def put(self, person: str, group_ids: list[str], at: datetime) -> None:
        """Remember what ``person`` was offered at ``at`` (replacing an earlier offer)."""
        self._offers.pop(person, None)
        self._offers[person] = (at, group_ids)
        while len(self._offers) > self.limit:
            self._offers.popitem(last=False)

    def get(self, person: str, now: datetime) -> list[str] | None:
        """The groups last offered to ``person``, unless that was more than ``ttl`` ago."""
        offer = self._offers.get(person)
        if offer is None or now - offer[0] > self.ttl:
            return None
        return offer[1]


class EntryFlowHandler:
    """Private locations, picks from the last offer and invite codes."""

    name = "entry-flow"
    always = False

    def __init__(
        self,
        planner: Callable[[], CampaignPlanner],
        index: Callable[[], GroupIndex],
        counts: MemberCounts,
        *,
        radius_m: float,
        limit: int,
        beyond_m: float | None = None,
        placement: OverflowPlacement | None = None,
        joins: EntryJoins | None = None,
        waitlist: Waitlist | None = None,
        seats: SeatsRepo | None = None,
    ) -> None:
        self._planner = planner
        self._index = index
        self._counts = counts
        self._radius_m = radius_m
        self._beyond_m = beyond_m
        self._limit = limit
        self._placement = placement
        self._joins = joins
        self._waitlist = waitlist
        self._seats = seats
        self._offers = RouteOffers()

    def accepts(self, event: Event, ctx: HandlerContext) -> bool:
        """A private location; a private number after an offer; a private invite code."""
        if isinstance(event, LocationShared):
            return event.room_id is None
        if not isinstance(event, MessageReceived) or event.room_id is not None:
            return False
        text = event.text.strip()
        if _PICK.match(text) and self._offers.get(event.sender.id, event.at) is not None:
            return True
        return self._joins is not None and looks_like_invite_request(text)

    async def handle(self, event: Event, ctx: HandlerContext) -> bool:
        """Answer the location, pick or code; False for a number or code that means nothing."""
        if isinstance(event, LocationShared):
            await self._location(event, ctx)
            return True
        assert isinstance(event, MessageReceived)
        text = event.text.strip()
        if await self._pick(event, text, ctx):
            return True
        request = await ctx.db(self._joins.invite_request, text) if self._joins else None
        if request is not None and (request.group_id is not None or request.explicit):
            await self._invite_by_code(event, request, ctx)
            return True
        return False

    # --- locations -------------------------------------------------------------------------

    async def _location(self, event: LocationShared, ctx: HandlerContext) -> None:
        person = event.sender.id
        key = event_key(event)
        try:
            placed = await ctx.db(self._place_and_record, event, person)
        except ValueError as exc:
            logger.bind(contact=mask(person)).warning("location rejected: {}", exc)
            await ctx.reply(person, event.at, "抱歉，没能识别这个位置，请重新发送一次位置。", key)
            return
        # Someone already in a group nearby is served: no promise, no waitlist row for them.
        waiting = placed.overflow and not placed.already and self._waitlist is not None
        if waiting:
            assert self._waitlist is not None
            await ctx.db(self._waitlist.wait, person, event.lat, event.lon, event.crs, event.at)
        self._offers.put(person, [r.group.id for r in placed.results], event.at)
        text = format_placement(placed, self._radius(), waiting=waiting)
        await ctx.reply(person, event.at, text, key)

    def _place_and_record(self, event: LocationShared, person_id: str) -> Placement:
        """The placement, and the person's chat visit located there: one worker-thread call."""
        placed = self.placement(event.lat, event.lon, event.crs, person_id)
        if self._joins is not None:
            wlat, wlon = to_wgs84(event.lat, event.lon, event.crs)
            located = Located("gps", wlat, wlon, placed.area.key, placed.overflow)
            self._joins.chat_visit(person_id, event.at, located)
        return placed

    def _radius(self) -> float:
        return self._placement.radius_m if self._placement is not None else self._radius_m

    def placement(self, lat: float, lon: float, crs: str, person_id: str) -> Placement:
        """Groups to offer ``person_id`` at a point: never one they are in; nearest with room
        within the radius, else nearest beyond it (the overflow alert is raised then).

        Blocking (reads the person's groups): call it from a worker thread.
        """
        mine = self._groups_of(person_id)
        if self._placement is not None:
            area = grid_area(*to_wgs84(lat, lon, crs))
            return self._placement.place(lat, lon, crs, area, limit=self._limit, exclude=mine)
        results = [r for r in self.route(lat, lon, crs) if r.group not in mine]
        return Placement(results, False, grid_area(*to_wgs84(lat, lon, crs)))

    def route(self, lat: float, lon: float, crs: str = "gcj02") -> list[RouteResult]:
        """Nearest groups with room, within the radius; nearest beyond it if none is."""
        counts = self._counts.member_counts()
        return self._index().offer(
            lat,
            lon,
            crs,
            radius_m=self._radius_m,
            beyond_m=self._beyond_m,
            limit=self._limit,
            member_counts=counts,
        )[0]

    def _groups_of(self, person_id: str) -> list[WelfareGroup]:
        """The welfare groups ``person_id`` is in now (blocking)."""
        if self._seats is None:
            return []
        return welfare_groups_of(self._seats, self._planner().ops.groups, person_id)

    async def _is_member(self, person_id: str, group_id: str, ctx: HandlerContext) -> bool:
        if self._seats is None:
            return False
        return group_id in await ctx.db(self._seats.groups_of, person_id)

    # --- picks and codes -------------------------------------------------------------------

    async def _pick(self, event: MessageReceived, text: str, ctx: HandlerContext) -> bool:
        pick = _PICK.match(text)
        offered = self._offers.get(event.sender.id, event.at)
        if not pick or not offered:
            return False
        person, key = event.sender.id, event_key(event)
        if not 1 <= int(pick.group(1)) <= len(offered):
            choices = "1" if len(offered) == 1 else f"1～{len(offered)}"
            await ctx.reply(person, event.at, f"请回复 {choices} 中的序号，或重新发送位置。", key)
            return True
        group_id = offered[int(pick.group(1)) - 1]
        group = ctx.ops.groups.get(group_id)
        if group is None:  # gone from the directory since the offer: offer again
            await ctx.reply(person, event.at, "这个群已不再开放，请重新发送位置。", key)
            return True
        await self._invite(
            event, group, key, ctx, full_hint="请重新发送位置，我为您推荐其他有空位的群。"
        )
        return True

    async def _invite_by_code(
        self, event: MessageReceived, request: InviteRequest, ctx: HandlerContext
    ) -> None:
        """The entry page told the person to send this code: invite them into the chosen group."""
        key = event_key(event)
        group = ctx.ops.groups.get(request.group_id or "")
        if group is None:
            text = f"没有找到入群码 {request.code}，请回到入群页面重新选择，或直接发送位置给我。"
            await ctx.reply(event.sender.id, event.at, text, key)
            return
        assert self._joins is not None
        if request.holder not in (None, event.sender.id):
            await ctx.reply(event.sender.id, event.at, _taken(request.code), key)
            return
        await self._invite(
            event,
            group,
            key,
            ctx,
            full_hint="请发送您的位置，我为您推荐附近其他有空位的群。",
            member_hint="如需加入附近其他福利群，请发送您的位置。",
            claim=request.code,
        )

    async def _invite(
        self,
        event: MessageReceived,
        group: WelfareGroup,
        key: str,
        ctx: HandlerContext,
        *,
        full_hint: str,
        member_hint: str = "",
        claim: str | None = None,
    ) -> None:
        """Invite the sender into ``group`` unless they are in it or it is full."""
        person = event.sender.id
        if await self._is_member(person, group.id, ctx):
            await ctx.reply(person, event.at, already_in([group.name]) + member_hint, key)
            return
        if self._counts.get(group.id, group.members) >= group.capacity:
            full = (
                f"「{group.name}」刚刚满员了，"
                if claim is None
                else f"抱歉，「{group.name}」刚刚满员了。"
            )
            await ctx.reply(person, event.at, full + full_hint, key)
            return
        if claim is not None and self._joins is not None:
            if not await ctx.db(self._joins.claim, claim, person):  # lost a race for the code
                await ctx.reply(person, event.at, _taken(claim), key)
                return
        elif self._joins is not None:  # a pick from the private chat's offer
            await ctx.db(self._joins.chat_chosen, person, group.id, event.at)
        told = f"已邀请您加入「{group.name}」，请在聊天列表中查看邀请。"
        actions: list[tuple[Action, str]] = [
            (Invite(group.id, person), key + ":invite"),
            (Say(contact_conv(person), told), key),
        ]
        await ctx.send(actions, event.at)
