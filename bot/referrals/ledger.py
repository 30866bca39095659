"""The referral ledger: conversion events in, tiers granted exactly once, fraud held back.

Each event is one transaction: the event row goes in first (a replayed ``event_id`` inserts
nothing and changes nothing), then the applicant's winner and the affected referrers are
recomputed by :mod:`bot.referrals.rules` from the stored events, and rewards are brought in line
with what the rules say. The database enforces the invariants the code relies on: one row per
``event_id`` and one reward per (referrer, tier). On PostgreSQL, advisory locks on the applicant
and on each affected referrer (taken in that order, referrers sorted) serialise the writers that
could see each other's half-done work; SQLite has a single writer already.

A recount can move a friend to another referrer (an earlier event arrived late). Rewards nobody
has paid or decided yet follow the recount (created, held, released or withdrawn); rewards sent,
confirmed, approved or rejected stay as they are, and a warning is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import Engine

from bot.opsdata.models import ReferralProgramme, ReferralTier
from bot.privacy import mask
from bot.referrals import rules
from bot.referrals.events import ConversionEvent
from db.referral_repositories import ReferralQueries, ReferralStore, RewardRow
from db.repositories import utc
from scheduler.clock import Clock

OPEN = ("pending", "held")  # statuses a recount may still change, when nobody decided them


@dataclass(frozen=True)
class Grant:
    """A tier newly granted by an event: what a congratulation names."""

    reward_id: int
    referrer_id: str
    tier: int
    reward: str
    status: str  # pending, or held for review


@dataclass(frozen=True)
class Receipt:
    """What happened to one event: ``duplicate`` for a replay, else its outcome and grants."""

    event_id: str
    duplicate: bool
    outcome: str = ""
    granted: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class Progress:
    """A member's standing: friends counted, tiers reached and the next tier."""

    counted: int
    rewards: tuple[RewardRow, ...]
    next_tier: ReferralTier | None
    window_closes: datetime | None

    @property
    def remaining(self) -> int:
        """Friends still needed for the next tier (0 when every tier is reached)."""
        return 0 if self.next_tier is None else max(0, self.next_tier.count - self.counted)


class LedgerError(ValueError):
    """A review decision that cannot be made (unknown reward, wrong status)."""


@dataclass
class ReferralLedger:
    """Records conversion events and keeps every referrer's rewards in line with the rules."""

    engine: Engine
    programme: Callable[[], ReferralProgramme | None]
    clock: Clock
    burst: rules.Burst | None = None
    on_granted: list[Callable[[Sequence[Grant]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queries = ReferralQueries(self.engine)

    # --- events ------------------------------------------------------------------------------

    def record(self, event: ConversionEvent, referrer_id: str, source: str = "webhook") -> Receipt:
        """Store one event (idempotent by ``event_id``) and apply the counting rules."""
        programme = self.programme()
        if programme is None:
            raise LedgerError("no referral programme is configured (campaigns/*.yaml referral:)")
        now = self.clock.now()
        # Outcomes known from the event alone are written with it; a qualifying event starts
        # as its applicant's winner (the common case) and is corrected if an earlier one exists.
        if event.type != programme.qualifying_event:
            first = rules.NOT_QUALIFYING
        elif event.referrer_applicant is not None and event.referrer_applicant == event.applicant:
            first = rules.SELF_REFERRAL
        else:
            first = ""
        with self.engine.begin() as conn:
            store = ReferralStore(conn)
            row_id = store.insert_event(
                {
                    "event_id": event.event_id,
                    "type": event.type,
                    "referral_code": event.referral_code.upper(),
                    "referrer_id": referrer_id,
                    "applicant": event.applicant,
                    "referrer_applicant": event.referrer_applicant,
                    "occurred_at": utc(event.occurred_at),
                    "received_at": utc(now),
                    "source": source,
                    "wins": not first,
                    "outcome": first or rules.COUNTED,
                }
            )
            if row_id is None:
                return Receipt(event.event_id, duplicate=True)
            grants: list[Grant] = []
            if first:
                outcome = first
            else:
                outcome, grants = self._apply(store, row_id, event, referrer_id, programme, now)
        receipt = Receipt(event.event_id, False, outcome, tuple(grants))
        if grants:
            for hook in self.on_granted:
                try:
                    hook(receipt.granted)
                except Exception as exc:  # a congratulation failing must not undo a payment
                    logger.opt(exception=exc).error("referral grant hook failed: {}", exc)
        return receipt

    def _apply(
        self,
        store: ReferralStore,
        row_id: int,
        event: ConversionEvent,
        referrer_id: str,
        programme: ReferralProgramme,
        now: datetime,
    ) -> tuple[str, list[Grant]]:
        """Decide the applicant's winner, then recount the referrers that gained or lost.

        The new row went in as its applicant's counted winner (the common case, then nothing
        needs rewriting); it is corrected here when that is not so.
        """
        store.lock([f"applicant:{event.applicant}"])
        winners = None
        if store.single_writer:
            candidates, winners = store.candidates_and_winners(
                event.applicant, event.type, referrer_id
            )
        else:
            candidates = store.candidates(event.applicant, event.type)
        winner = rules.first_valid([rules.Friend(c.event_id, c.occurred_at) for c in candidates])
        assert winner is not None  # the new event itself is a candidate
        by_event = {c.event_id: c for c in candidates}
        won = by_event[winner.event_id]
        dethroned = [c for c in candidates if c.wins and c.id not in (won.id, row_id)]
        if won.id != row_id and not dethroned:
            store.lose([row_id], rules.APPLICANT_COUNTED)
            return rules.APPLICANT_COUNTED, []
        affected = {won.referrer_id, *(c.referrer_id for c in dethroned)}
        store.lock(f"referrer:{r}" for r in affected)
        store.lose([c.id for c in dethroned], rules.APPLICANT_COUNTED)
        if won.id != row_id:
            store.lose([row_id], rules.APPLICANT_COUNTED)
            store.win(won.id)
        fresh = won.id == row_id and not dethroned  # the rows read above are still current
        grants: list[Grant] = []
        outcomes: dict[str, str] = {}
        losers = {c.referrer_id for c in dethroned}
        for referrer in sorted(affected):
            known = winners if fresh and referrer == referrer_id else None
            outcomes.update(
                self._recount(
                    store, referrer, programme, now, grants, referrer in losers, row_id, known
                )
            )
        return outcomes.get(event.event_id, rules.APPLICANT_COUNTED), grants

    def _recount(
        self,
        store: ReferralStore,
        referrer_id: str,
        programme: ReferralProgramme,
        now: datetime,
        grants: list[Grant],
        lost_a_friend: bool,
        new_row: int,
        winners: list[tuple[int, str, datetime, str]] | None = None,
    ) -> dict[str, str]:
        """Recompute one referrer's outcomes and rewards from the stored events."""
        if winners is None:
            winners = store.winners_of(referrer_id)
        friends = [rules.Friend(event_id, at) for _, event_id, at, _ in winners]
        standing = rules.evaluate(friends, programme, self.burst)
        store.set_outcomes(
            [
                (row_id, standing.outcomes[event_id])
                for row_id, event_id, _, outcome in winners
                if standing.outcomes[event_id] != outcome
            ]
        )
        # Rewards are in line with the stored outcomes (every transaction leaves them so): when
        # the tiers those outcomes reached are the tiers reached now, there is nothing to align.
        before = sorted(
            (
                f
                for f, (row_id, *_, outcome) in zip(friends, winners, strict=True)
                if outcome == rules.COUNTED and row_id != new_row
            ),
            key=lambda f: f.order,
        )
        had = rules.reached(before, programme, self.burst)
        if lost_a_friend or had != standing.tiers[: len(had)]:
            self._align_rewards(store, referrer_id, standing.tiers, now, grants)
        elif len(had) < len(standing.tiers):  # only new tiers: no need to read the old ones
            self._align_rewards(store, referrer_id, standing.tiers[len(had) :], now, grants, {})
        return standing.outcomes

    def _align_rewards(
        self,
        store: ReferralStore,
        referrer_id: str,
        tiers: Sequence[rules.Tier],
        now: datetime,
        grants: list[Grant],
        existing: dict[int, RewardRow] | None = None,
    ) -> None:
        """Create, update or withdraw the referrer's open rewards to match ``tiers``.

        ``existing`` given (empty) means: ``tiers`` are new tiers only, insert them (the unique
        constraint still refuses any that already exist).
        """
        only_new = existing is not None
        if existing is None:
            existing = {r.tier: r for r in store.rewards_of(referrer_id)}
        wanted = {t.count: t for t in tiers}
        for count, tier in wanted.items():
            status = "held" if tier.held_reason else "pending"
            row = existing.get(count)
            if row is None:
                new_id = store.insert_reward(
                    {
                        "referrer_id": referrer_id,
                        "tier": count,
                        "reward": tier.reward,
                        "status": status,
                        "held_reason": tier.held_reason,
                        "reached_at": utc(tier.reached_at),
                        "reached_by": tier.reached_by,
                        "created_at": utc(now),
                        "updated_at": utc(now),
                        "decision_note": "",
                        "attempts": 0,
                        "last_error": "",
                    }
                )
                if new_id is not None:
                    note = f"tier {count} reached by event {tier.reached_by}"
                    if tier.held_reason:
                        note += f"; held: {tier.held_reason}"
                    store.add_history((new_id, referrer_id, count), None, status, now, note=note)
                    grants.append(Grant(new_id, referrer_id, count, tier.reward, status))
                continue
            if row.status not in OPEN or row.decided_at is not None:
                continue
            same = (
                row.status == status
                and row.held_reason == tier.held_reason
                and row.reached_at == utc(tier.reached_at)
                and row.reached_by == tier.reached_by
            )
            if same:
                continue
            store.update_reward(
                row.id,
                OPEN,
                status=status,
                held_reason=tier.held_reason,
                reached_at=utc(tier.reached_at),
                reached_by=tier.reached_by,
                updated_at=utc(now),
            )
            if row.status != status:
                store.add_history(row, row.status, status, now, note=tier.held_reason or "recount")
        for count, row in existing.items():
            if count in wanted or only_new:
                continue
            if row.status in OPEN and row.decided_at is None:
                store.delete_reward(row.id)
                store.add_history(
                    row, row.status, "withdrawn", now, note="recount: tier no longer reached"
                )
            else:
                logger.bind(referrer=mask(referrer_id), tier=count, status=row.status).warning(
                    "recount no longer reaches a tier already {}: kept", row.status
                )

    # --- questions for chat handlers and commands --------------------------------------------

    def progress(self, member_id: str) -> Progress:
        """The member's friends counted, rewards and next tier (for `我的邀请`)."""
        programme = self.programme()
        counted = self.queries.counted(member_id)
        rewards = tuple(self.queries.rewards(referrer_id=member_id))
        next_tier = None
        opened = self.queries.window_opened(member_id)
        closes = opened + timedelta(days=programme.window_days) if programme and opened else None
        if programme is not None:
            next_tier = next((t for t in programme.tiers if t.count > counted), None)
        return Progress(counted, rewards, next_tier, closes)

    def leaderboard(self, limit: int = 10) -> list[tuple[str, int]]:
        """(member id, friends counted), most first (for `邀请排行`; mask names when shown)."""
        return self.queries.leaderboard(limit)

    # --- review -------------------------------------------------------------------------------

    def held(self) -> list[RewardRow]:
        """Rewards held for review, oldest first."""
        return self.queries.rewards(statuses=["held"])

    def approve(self, reward_id: int, by: str, note: str = "") -> RewardRow:
        """Release a held reward for payment; recorded with who and when."""
        return self.decide(reward_id, ("held",), "pending", by, note or "approved")

    def reject(self, reward_id: int, by: str, why: str) -> RewardRow:
        """Refuse a held or pending reward for good; recorded with who, when and why."""
        if not why.strip():
            raise LedgerError("a rejection needs a reason (--why)")
        return self.decide(reward_id, ("held", "pending"), "rejected", by, why)

    def decide(
        self, reward_id: int, allowed: Sequence[str], to: str, by: str, note: str
    ) -> RewardRow:
        """Move a reward from one of ``allowed`` to ``to`` as a person's decision."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            store = ReferralStore(conn)
            row = store.reward(reward_id)
            if row is None:
                raise LedgerError(f"no reward with id {reward_id}")
            moved = store.update_reward(
                reward_id,
                allowed,
                status=to,
                decided_by=by,
                decided_at=utc(now),
                decision_note=note,
                updated_at=utc(now),
            )
            if not moved:
                was = " or ".join(allowed)
                raise LedgerError(f"reward {reward_id} is {row.status}; only {was} can become {to}")
            store.add_history(row, row.status, to, now, by=by, note=note)
            after = store.reward(reward_id)
        assert after is not None
        logger.bind(reward=reward_id, by=by).info("reward {}: {} -> {}", reward_id, row.status, to)
        return after
