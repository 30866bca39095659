"""Lottery rounds in the time loop: a committed seed at announcement, entries, the draw, verify.

1. When a lottery occurrence has been queued (``schedule_occurrence`` says ``enqueued``), a
   round is stored with a fresh random value and the seed derived from it (bot.lottery.rules),
   before any member can enter. One round per occurrence (a unique constraint).
2. A member who sends the keyword in a targeted group is entered once (a unique constraint); an
   opted-out member is refused.
3. At ``draw_at`` the round is drawn per group among the entries that can win (not opted out,
   still in the group, not staff); exclusions, winners and the outbox sends (winners announced
   in the group with masked names, each winner told privately) commit in one transaction.
4. :meth:`LotteryService.verify` re-derives the seed and re-runs the draw on the stored entries.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from loguru import logger
from sqlalchemy import Engine

from bot.campaigns import CampaignPlanner
from bot.events import Person, Say, contact_conv, room_conv
from bot.lottery.rules import LONGEST_WAIT, LotterySpec, draw, lottery_spec, seed_of
from bot.opsdata.models import Campaign
from bot.outbox import Outbox, OutboxItem
from bot.privacy import mask, mask_name
from bot.retry import DEFAULT_POLICY, RetryPolicy, fault_reason, is_transient
from db.engagement_repositories import (
    Entrant,
    EntryOutcome,
    LotteryRepo,
    Round,
    Winner,
    record_draw,
)
from db.repositories import utc
from scheduler.clock import SHANGHAI, Clock

__all__ = ["Entry", "LotteryAudit", "LotteryService", "Verification"]

T = TypeVar("T")
OPTED_OUT, LEFT_GROUP, STAFF = "opted_out", "left_group", "staff"
_HOLD = timedelta(minutes=1)


@dataclass(frozen=True)
class Entry:
    """What a keyword did: the outcome, and the round's campaign name and draw time."""

    outcome: EntryOutcome
    campaign_name: str
    draw_at: datetime


@dataclass(frozen=True)
class Verification:
    """A re-run of a stored draw: ``ok`` when the seed and every group's winners agree."""

    round: Round
    ok: bool
    differences: list[str]
    winners: dict[str, list[str]]


class _AlreadyDrawn(Exception):
    """Another pass or process drew the round first; the transaction rolls back."""


class LotteryService:
    """Opens rounds, takes entries, draws on time, and verifies stored draws."""

    def __init__(
        self,
        planner: Callable[[], CampaignPlanner],
        engine: Engine,
        outbox: Outbox,
        clock: Clock,
        staff: Callable[[], frozenset[str]],
        account: str = "bot",
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._planner = planner
        self.repo = LotteryRepo(engine)
        self._outbox = outbox
        self._clock = clock
        self._staff = staff
        self._account = account
        self.retry = retry
        self._keywords: tuple[object, dict[str, list[Campaign]]] | None = None
        # After a draw failed for good: not tried again before this (never a busy loop).
        self._held_until: datetime | None = None

    # --- entries (called by the keyword handler) ---------------------------------------------

    def keywords(self) -> dict[str, list[Campaign]]:
        """Entry keyword -> enabled lottery campaigns using it (computed once per ops version)."""
        ops = self._planner().ops
        if self._keywords is None or self._keywords[0] is not ops:
            found: dict[str, list[Campaign]] = {}
            for c in ops.campaigns_of_kind("lottery"):
                spec = lottery_spec(c.data) if c.enabled else None
                if spec is not None:
                    found.setdefault(spec.keyword, []).append(c)
            self._keywords = (ops, found)
        return self._keywords[1]

    def enter(self, group_id: str, person: Person, keyword: str, at: datetime) -> Entry | None:
        """Enter ``person`` in the open round of a lottery with ``keyword`` reaching the group;
        None when no such round is open (the keyword is then ordinary text)."""
        ops = self._planner().ops
        group = ops.groups.get(group_id)
        if group is None:
            return None
        campaigns = {c.id: c for c in self.keywords().get(keyword, []) if ops.targets(c, group)}
        rounds = sorted(self.repo.rounds_open(list(campaigns), at), key=lambda r: r.draw_at)
        if not rounds:
            return None
        r = rounds[0]
        outcome = self.repo.enter(r.id, group_id, person.id, person.name, at)
        log = logger.bind(campaign=r.campaign_id, round=r.id, member=mask(person.id))
        log.info("lottery entry: {}", outcome)
        return Entry(outcome, campaigns[r.campaign_id].name, r.draw_at)

    # --- the time loop -------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest draw to do (a round opens in the pass that queues its announcement)."""
        due = self.repo.next_draw()
        if due is not None and self._held_until is not None:
            return max(due, self._held_until)
        return due

    async def run_due(self) -> int:
        """Open rounds for announcements just queued, then draw every round that is due."""
        now = self._clock.now()
        await self._db(self.open_rounds, now)
        if self._held_until is not None and now < self._held_until:
            return 0
        self._held_until = None
        drawn = 0
        for round_id in await self._db(self.repo.due, now):
            try:
                drawn += await self._db(self.draw_round, round_id, now)
            except Exception as exc:  # safe: an undrawn round stays undrawn, tried again later
                self._held_until = now + _HOLD
                if is_transient(exc):
                    logger.bind(round=round_id).warning("lottery draw held: {}", fault_reason(exc))
                else:
                    logger.opt(exception=exc).bind(round=round_id).error(
                        "lottery draw failed; tried again in a minute: {}", fault_reason(exc)
                    )
        return drawn

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        return await self.retry.call_async(lambda: asyncio.to_thread(fn, *args), what=name)

    def open_rounds(self, now: datetime) -> int:
        """A round, with its committed seed, for each lottery occurrence queued without one."""
        ops = self._planner().ops
        specs = {
            c.id: spec
            for c in ops.campaigns_of_kind("lottery")
            if (spec := lottery_spec(c.data)) is not None
        }
        since = now - LONGEST_WAIT - timedelta(days=1)
        opened = 0
        for campaign_id, fire_at in self.repo.announced_without_round(list(specs), since):
            spec = specs[campaign_id]
            committed = secrets.token_hex(32)
            values: dict[str, object] = {
                "campaign_id": campaign_id,
                "occurrence": utc(fire_at),
                "keyword": spec.keyword,
                "committed": committed,
                "seed": seed_of(campaign_id, fire_at, committed),
                "draw_at": utc(spec.draw_at(fire_at)),
                "winners_per_group": spec.winners,
                "prizes": list(spec.prizes),
                "created_at": utc(now),
            }
            if self.repo.open_round(values):
                opened += 1
                logger.bind(campaign=campaign_id, occurrence=fire_at.isoformat()).info(
                    "lottery round opened; draw at {}", spec.draw_at(fire_at).isoformat()
                )
        return opened

    def draw_round(self, round_id: int, now: datetime) -> int:
        """Draw one round and queue its announcements (one transaction); 1 when drawn here."""
        r = self.repo.get(round_id)
        if r is None or r.drawn_at is not None:
            return 0
        entrants = self.repo.entrants(round_id)
        excluded = _exclusions(entrants, self._staff())
        eligible: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        groups: list[str] = []
        for e in entrants:
            names[e.person_id] = e.person_name
            if e.group_id not in groups:
                groups.append(e.group_id)
            if e.entry_id not in excluded:
                eligible.setdefault(e.group_id, []).append(e.person_id)
        spec = LotterySpec(r.keyword, r.winners_per_group, r.prizes)
        winners = [
            Winner(group_id, person, rank, spec.prize(rank))
            for group_id in groups
            for rank, person in enumerate(
                draw(r.seed, group_id, eligible.get(group_id, []), r.winners_per_group), 1
            )
        ]
        items = self._announcements(r, groups, winners, names, now)

        def store(s: object) -> None:
            if not record_draw(s, round_id, now, excluded, winners):  # type: ignore[arg-type]
                raise _AlreadyDrawn

        try:
            self._outbox.enqueue(items, also=store)
        except _AlreadyDrawn:
            return 0
        logger.bind(campaign=r.campaign_id, round=round_id).info(
            "lottery drawn: {} entries, {} excluded, {} winners",
            len(entrants),
            len(excluded),
            len(winners),
        )
        return 1

    def _announcements(
        self,
        r: Round,
        groups: list[str],
        winners: list[Winner],
        names: dict[str, str],
        now: datetime,
    ) -> list[OutboxItem]:
        ops = self._planner().ops
        campaign = ops.campaigns.get(r.campaign_id)
        title = campaign.name if campaign is not None else r.campaign_id
        items: list[OutboxItem] = []
        for group_id in groups:
            mine = [w for w in winners if w.group_id == group_id]
            if mine:
                lines = [f"🎉【{title}】开奖啦！中奖名单："]
                lines += [
                    f"{w.rank}. {mask_name(names.get(w.person_id, ''))}"
                    + (f" — {w.prize}" if w.prize else "")
                    for w in mine
                ]
                lines.append("中奖的朋友请留意私信通知，感谢大家参与！")
                text = "\n".join(lines)
            else:
                text = f"【{title}】本期没有有效参与，下期再来！"
            items.append(self._item(f"lottery:{r.id}:{group_id}", room_conv(group_id), text, now))
            group = ops.groups.get(group_id)
            where = f"「{group.name}」" if group is not None else "群内"
            for w in mine:
                prize = f"：{w.prize}" if w.prize else ""
                note = f"恭喜您在{where}的【{title}】中奖{prize}！领奖方式将另行通知，请留意。"
                items.append(
                    self._item(
                        f"lottery:{r.id}:win:{w.person_id}", contact_conv(w.person_id), note, now
                    )
                )
        return items

    def _item(self, key: str, to: str, text: str, now: datetime) -> OutboxItem:
        # Results are owed to the entrants, not marketing: quiet hours do not expire them.
        return OutboxItem(key=key, action=Say(to, text), not_before=now, account=self._account)


class LotteryAudit:
    """Finds stored rounds and re-runs their draws (``qunfu lottery``); reads only."""

    def __init__(self, engine: Engine) -> None:
        self.repo = LotteryRepo(engine)

    def find(self, campaign_id: str, occurrence: str) -> Round | None:
        """The round of ``campaign_id`` at ``occurrence``: an ISO instant, or a date
        (YYYY-MM-DD, Asia/Shanghai) when the campaign has one round that day."""
        try:
            at = datetime.fromisoformat(occurrence)
        except ValueError:
            raise ValueError(
                f"occurrence: expected a date (YYYY-MM-DD) or an instant, got {occurrence!r}"
            ) from None
        if "T" in occurrence or " " in occurrence.strip():
            return self.repo.find(campaign_id, at if at.tzinfo else at.replace(tzinfo=SHANGHAI))
        same_day = [
            r
            for r in self.repo.rounds(campaign_id)
            if r.occurrence.astimezone(SHANGHAI).date() == at.date()
        ]
        return same_day[0] if len(same_day) == 1 else None

    def verify(self, r: Round) -> Verification:
        """Re-derive the seed and re-run the draw on the stored entries; compare the winners."""
        differences: list[str] = []
        seed = seed_of(r.campaign_id, r.occurrence, r.committed)
        if seed != r.seed:
            differences.append(f"seed: stored {r.seed}, derived {seed}")
        if r.drawn_at is None:
            differences.append(
                f"not drawn yet (draw at {r.draw_at.astimezone(SHANGHAI).isoformat()})"
            )
        eligible: dict[str, list[str]] = {}
        for e in self.repo.entrants(r.id):
            eligible.setdefault(e.group_id, [])
            if e.excluded is None:
                eligible[e.group_id].append(e.person_id)
        expected = {g: draw(seed, g, people, r.winners_per_group) for g, people in eligible.items()}
        stored: dict[str, list[str]] = {}
        for w in self.repo.winners(r.id):
            stored.setdefault(w.group_id, []).append(w.person_id)
        if r.drawn_at is not None:
            for g in sorted(set(expected) | set(stored)):
                want, got = expected.get(g, []), stored.get(g, [])
                if want != got:
                    differences.append(f"{g}: re-run {want}, stored {got}")
        return Verification(r, not differences, differences, expected)


def _exclusions(entrants: list[Entrant], staff: frozenset[str]) -> dict[int, str]:
    """Entries that cannot win, with the reason recorded on them at the draw."""
    out: dict[int, str] = {}
    for e in entrants:
        if e.excluded is not None:
            out[e.entry_id] = e.excluded
        elif e.person_id in staff:
            out[e.entry_id] = STAFF
        elif e.opted_out:
            out[e.entry_id] = OPTED_OUT
        elif not e.in_group:
            out[e.entry_id] = LEFT_GROUP
    return out
