"""Closing the funnel from the chat side: invite codes sent to the bot, and joins matched to visits.

Matching rule (docs/entry.md): a join is matched to the visit whose invite code this person sent
the bot for this group (or whose group they picked in the private chat); failing that, to the
oldest unmatched QR choice of this group within ``match_window`` (30 minutes) before the join.
A join that matches nothing is organic.

The private chat is a channel of its own (``chat``, 私聊机器人): ``我要进群`` or a shared
location opens a visit for that person, or continues the one whose last step is less than a day
old; a shared location locates it, a number picked from the offer chooses the group, and the
join into that group completes it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from bot.privacy import mask
from db.entry_repositories import EntryRepo, Located

CHAT_CHANNEL = "chat"
CHAT_CHANNEL_NAME = "私聊机器人"
# What a person does in the private chat within a day of their last step continues the visit
# (as long as the offer they may pick from is kept: bot.handlers.entry.RouteOffers).
CHAT_VISIT_SPAN = timedelta(days=1)

# Invite codes skip look-alikes (I, O, 0, 1); people may type them in either case.
INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INVITE_CODE_LEN = 6
_INVITE_REQUEST = re.compile(
    rf"^\s*(入群|进群|加群)?\s*[:：]?\s*([{INVITE_ALPHABET}]{{{INVITE_CODE_LEN}}})\s*$",
    re.IGNORECASE,
)


def looks_like_invite_request(text: str) -> bool:
    """Whether a private message has the shape of an invite code (no database lookup)."""
    return _INVITE_REQUEST.match(text) is not None


@dataclass(frozen=True)
class MatchedJoin:
    """A join that completes a visit, with the channel to attribute it to."""

    visit_id: str
    channel: str


@dataclass(frozen=True)
class InviteRequest:
    """A private message carrying an invite code; ``group_id`` None when the code is unknown."""

    code: str
    group_id: str | None
    explicit: bool  # the message said 入群/进群/加群, so an unknown code deserves an answer
    holder: str | None = None
    """Who sent this code first: a code is one visitor's, not a pass for whoever sees it."""


class EntryJoins:
    """The dispatcher's view of the entry funnel."""

    def __init__(self, visits: EntryRepo, match_window: timedelta) -> None:
        self._visits = visits
        self._window = match_window

    def invite_request(self, text: str) -> InviteRequest | None:
        """The invite code in a private message, if the message is one."""
        m = _INVITE_REQUEST.match(text)
        if m is None:
            return None
        code = m.group(2).upper()
        visit = self._visits.by_invite_code(code)
        group = visit.chosen_group if visit is not None and visit.join_method == "invite" else None
        holder = visit.invited_contact if group is not None and visit is not None else None
        return InviteRequest(code, group, m.group(1) is not None, holder)

    def claim(self, code: str, contact_id: str) -> bool:
        """The first sender of an invite code is the person behind that visit; False when
        someone else has claimed it (a forwarded or overheard code invites nobody else)."""
        visit = self._visits.by_invite_code(code)
        return visit is None or self._visits.claim_invite(visit.id, contact_id)

    def chat_visit(self, contact_id: str, at: datetime, located: Located | None = None) -> str:
        """Open, or continue, ``contact_id``'s visit in the private chat; ``located`` records
        where they shared their location. Blocking: the visit's id."""
        visits = self._visits
        visit_id = visits.open_visit_of(CHAT_CHANNEL, contact_id, at - CHAT_VISIT_SPAN)
        if visit_id is None:
            visit_id = secrets.token_urlsafe(12)
            visits.create(visit_id, CHAT_CHANNEL, at, located=located, contact_id=contact_id)
            logger.bind(entry=visit_id, channel=CHAT_CHANNEL).info("entry: chat visit")
        elif located is not None:
            visits.relocate(visit_id, CHAT_CHANNEL, at, located)
        return visit_id

    def chat_chosen(self, contact_id: str, group_id: str, at: datetime) -> None:
        """``contact_id`` picked ``group_id`` from the private chat's offer and was invited."""
        visit_id = self.chat_visit(contact_id, at)
        self._visits.chosen(visit_id, group_id, at, "invite", None)

    def match(self, group_id: str, person_id: str, at: datetime) -> MatchedJoin | None:
        """The visit this join completes (marked joined), or None."""
        visit = self._visits.match_join(group_id, person_id, at, self._window)
        if visit is None:
            return None
        logger.bind(
            entry=visit.id, channel=visit.channel, group=group_id, contact=mask(person_id)
        ).info("entry: joined")
        return MatchedJoin(visit.id, visit.channel)

    def link(self, match: MatchedJoin, membership_id: int | None) -> None:
        self._visits.link_membership(match.visit_id, membership_id)
