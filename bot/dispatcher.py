"""Routes each domain event to the services that act on it.

Handlers are small; a malformed event is rejected with a logged reason and never stops the loop.
Every reply goes through the outbox like any other send.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger

from bot.campaigns import CampaignPlanner
from bot.entry.joins import EntryJoins, InviteRequest
from bot.entry.overflow import OverflowPlacement, Placement, grid_area
from bot.entry.seats import MemberCounts
from bot.entry.waitlist import Waitlist
from bot.events import (
    Event,
    Invite,
    LocationShared,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    Say,
    contact_conv,
    room_conv,
)
from bot.opsdata.models import WelfareGroup
from bot.outbox import Outbox, OutboxItem
from bot.privacy import mask
from bot.replies import already_in, answer_faq, format_placement
from bot.routing import GroupIndex, RouteResult, to_wgs84
from db.entry_repositories import SeatsRepo
from db.repositories import GroupRepo, MembershipRepo
from scheduler.clock import Clock

_JOIN_WORDS = ("进群", "入群", "加群", "福利群")
_PICK = re.compile(r"^\s*(\d{1,2})\s*$")


@dataclass
class RouteOffers:
    """The last list of groups offered to each person, so "2" means the second one."""

    offers: dict[str, list[str]] = field(default_factory=dict)


class Dispatcher:
    """Hands events to routing, memberships, FAQ; replies go through the outbox."""

    def __init__(
        self,
        planner: Callable[[], CampaignPlanner],
        index: Callable[[], GroupIndex],
        groups: GroupRepo,
        memberships: MembershipRepo,
        outbox: Outbox,
        clock: Clock,
        *,
        bot_id: str,
        radius_m: float,
        limit: int,
        placement: OverflowPlacement | None = None,
        joins: EntryJoins | None = None,
        waitlist: Waitlist | None = None,
        seats: SeatsRepo | None = None,
        counts: MemberCounts | None = None,
    ) -> None:
        self._planner = planner
        self._index = index
        self._groups = groups
        self._memberships = memberships
        self._outbox = outbox
        self._clock = clock
        self._bot_id = bot_id
        self._radius_m = radius_m
        self._limit = limit
        self._offers = RouteOffers()
        self._placement = placement
        self._joins = joins
        self._waitlist = waitlist
        self._seats = seats
        # Live counts in memory, kept right here after every join and leave.
        self._counts = counts if counts is not None else MemberCounts(groups)

    def handle(self, event: Event) -> None:
        """Act on one event; errors are logged with a reason, never raised."""
        try:
            if isinstance(event, MemberJoined):
                self._joined(event)
            elif isinstance(event, MemberLeft):
                self._left(event)
            elif isinstance(event, LocationShared):
                self._location(event)
            elif isinstance(event, MessageReceived):
                self._message(event)
            else:
                logger.warning("unknown event type {}", type(event).__name__)
        except Exception as exc:  # one bad event must not stop the bot
            logger.opt(exception=exc).bind(event=type(event).__name__).error(
                "event rejected: {}", exc
            )

    # --- membership ----------------------------------------------------------------------------

    def _joined(self, event: MemberJoined) -> None:
        if event.room_id not in self._planner().ops.groups:
            logger.bind(room=event.room_id).warning("join in a room that is not a welfare group")
            return
        try:
            for person in event.members:
                if person.id == self._bot_id:
                    continue
                matched = (
                    self._joins.match(event.room_id, person.id, event.at) if self._joins else None
                )
                membership = self._memberships.join(
                    event.room_id,
                    person,
                    event.at,
                    event.inviter_id,
                    channel=matched.channel if matched else None,
                )
                if matched is not None and self._joins is not None:
                    self._joins.link(matched, membership.id)
        finally:  # joins already written before a failure still count
            self._counts.refresh([event.room_id])

    def _left(self, event: MemberLeft) -> None:
        group = self._planner().ops.groups.get(event.room_id)
        was_full = group is not None and self._counts.get(group.id, group.members) >= group.capacity
        try:
            for member_id in event.member_ids:
                self._memberships.leave(event.room_id, member_id, event.at)
        finally:  # leaves already written before a failure still count
            self._counts.refresh([event.room_id])
        # Only a group crossing from full to room can help anyone waiting: the waitlist is
        # looked at only on that crossing.
        if was_full and group is not None and self._waitlist is not None:
            after = self._counts.get(group.id, group.members)
            if after < group.capacity:
                self._waitlist.opened([group], {group.id: after}, event.at)

    # --- private chat: routing -----------------------------------------------------------------

    def _location(self, event: LocationShared) -> None:
        if event.room_id is not None:
            return
        person = event.sender.id
        key = f"loc:{person}:{event.at.isoformat()}"
        try:
            placed = self.placement(event.lat, event.lon, event.crs, person)
        except ValueError as exc:
            logger.bind(contact=mask(person)).warning("location rejected: {}", exc)
            self._reply(person, event.at, "抱歉，没能识别这个位置，请重新发送一次位置。", key)
            return
        # Someone already in a group nearby is served: no promise, no waitlist row for them.
        waiting = placed.overflow and not placed.already and self._waitlist is not None
        if waiting:
            assert self._waitlist is not None
            self._waitlist.wait(person, event.lat, event.lon, event.crs, event.at)
        self._offers.offers[person] = [r.group.id for r in placed.results]
        self._reply(
            person, event.at, format_placement(placed, self._radius(), waiting=waiting), key
        )

    def _radius(self) -> float:
        return self._placement.radius_m if self._placement is not None else self._radius_m

    def _groups_of(self, person_id: str) -> list[WelfareGroup]:
        """The welfare groups ``person_id`` is in now."""
        if self._seats is None:
            return []
        groups = self._planner().ops.groups
        return [groups[g] for g in sorted(self._seats.groups_of(person_id)) if g in groups]

    def _is_member(self, person_id: str, group_id: str) -> bool:
        return self._seats is not None and group_id in self._seats.groups_of(person_id)

    def placement(self, lat: float, lon: float, crs: str, person_id: str) -> Placement:
        """Groups to offer ``person_id`` at a point: never one they are in; nearest with room
        within the radius, else nearest beyond it (the overflow alert is raised then)."""
        mine = self._groups_of(person_id)
        if self._placement is not None:
            area = grid_area(*to_wgs84(lat, lon, crs))
            return self._placement.place(lat, lon, crs, area, limit=self._limit, exclude=mine)
        results = [r for r in self.route(lat, lon, crs) if r.group not in mine]
        return Placement(results, False, grid_area(*to_wgs84(lat, lon, crs)))

    def route(self, lat: float, lon: float, crs: str = "gcj02") -> list[RouteResult]:
        """Nearest groups with room, within the radius; nearest beyond it if none is."""
        counts = self._counts.member_counts()
        index = self._index()
        results = index.nearest(
            lat, lon, crs, limit=self._limit, member_counts=counts, radius_m=self._radius_m
        )
        return results or index.nearest(lat, lon, crs, limit=self._limit, member_counts=counts)

    def _message(self, event: MessageReceived) -> None:
        if event.sender.id == self._bot_id:
            return
        key = f"msg:{event.message_id or _digest(event)}"
        if event.room_id is None:
            self._private_message(event, key)
        elif self._bot_id in event.mentions:
            answer = answer_faq(self._planner().ops.faq, event.text)
            text = answer or self._no_answer(event.room_id)
            self._enqueue(Say(room_conv(event.room_id), text, (event.sender.id,)), event.at, key)

    def _no_answer(self, group_id: str) -> str:
        """What to say when the FAQ has no answer: point to the group's customer manager."""
        ops = self._planner().ops
        group = ops.groups.get(group_id)
        manager = ops.managers.get(group.manager or "") if group is not None else None
        if manager is None:
            return "这个问题我暂时回答不了，请联系您的客户经理或拨打信用卡客服热线咨询。"
        return f"这个问题我暂时回答不了，请私信本群客户经理{manager.name}咨询。"

    def _private_message(self, event: MessageReceived, key: str) -> None:
        text = event.text.strip()
        pick = _PICK.match(text)
        offered = self._offers.offers.get(event.sender.id)
        if pick and offered:
            n = int(pick.group(1))
            if 1 <= n <= len(offered):
                group_id = offered[n - 1]
                group = self._planner().ops.groups[group_id]
                name = group.name
                if self._is_member(event.sender.id, group_id):
                    self._reply(event.sender.id, event.at, already_in([name]), key)
                    return
                if self._counts.get(group_id, group.members) >= group.capacity:
                    self._reply(
                        event.sender.id,
                        event.at,
                        f"「{name}」刚刚满员了，请重新发送位置，我为您推荐其他有空位的群。",
                        key,
                    )
                    return
                self._enqueue(Invite(group_id, event.sender.id), event.at, key + ":invite")
                self._reply(
                    event.sender.id,
                    event.at,
                    f"已邀请您加入「{name}」，请在聊天列表中查看邀请。",
                    key,
                )
                return
        request = self._joins.invite_request(text) if self._joins is not None else None
        if request is not None and (request.group_id is not None or request.explicit):
            self._invite_by_code(event, request, key)
            return
        if any(w in text for w in _JOIN_WORDS):
            self._reply(
                event.sender.id,
                event.at,
                "欢迎！请点击「+」→「位置」发送您的位置，我为您推荐附近有空位的福利群。",
                key,
            )
            return
        answer = answer_faq(self._planner().ops.faq, text)
        if answer:
            self._reply(event.sender.id, event.at, answer, key)

    def _invite_by_code(self, event: MessageReceived, request: InviteRequest, key: str) -> None:
        """The entry page told the person to send this code: invite them into the chosen group."""
        group = self._planner().ops.groups.get(request.group_id or "")
        if group is None:
            self._reply(
                event.sender.id,
                event.at,
                f"没有找到入群码 {request.code}，请回到入群页面重新选择，或直接发送位置给我。",
                key,
            )
            return
        if self._is_member(event.sender.id, group.id):
            self._reply(
                event.sender.id,
                event.at,
                already_in([group.name]) + "如需加入附近其他福利群，请发送您的位置。",
                key,
            )
            return
        if self._counts.get(group.id, group.members) >= group.capacity:
            self._reply(
                event.sender.id,
                event.at,
                f"抱歉，「{group.name}」刚刚满员了。请发送您的位置，我为您推荐附近其他有空位的群。",
                key,
            )
            return
        assert self._joins is not None
        self._joins.claim(request.code, event.sender.id)
        self._enqueue(Invite(group.id, event.sender.id), event.at, key + ":invite")
        self._reply(
            event.sender.id,
            event.at,
            f"已邀请您加入「{group.name}」，请在聊天列表中查看邀请。",
            key,
        )

    def _reply(self, contact_id: str, at: datetime, text: str, key: str) -> None:
        self._enqueue(Say(contact_conv(contact_id), text), at, key)

    def _enqueue(self, action: Say | Invite, at: datetime, key: str) -> None:
        self._outbox.enqueue(
            [
                OutboxItem(
                    key=key, action=action, not_before=at, marketing=False, account=self._bot_id
                )
            ]
        )


def _digest(event: MessageReceived) -> str:
    raw = f"{event.sender.id}|{event.room_id}|{event.at.isoformat()}|{event.text}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]
