"""The counting rules, as pure functions of the events: no clock, no arrival order.

The ledger is recomputable: who an applicant counts for, which friends count for a referrer and
which tiers that reaches depend only on the events' content (``occurred_at``, then ``event_id``
as tie-break). So replays, shuffles and concurrent deliveries of the same events converge on the
same ledger (tests/unit/test_referral_ledger_properties.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.opsdata.models import ReferralProgramme
from scheduler.clock import SHANGHAI

# Outcomes recorded on each event: the reason it did, or did not, count.
COUNTED = "counted"
NOT_QUALIFYING = "not_qualifying"
SELF_REFERRAL = "self_referral"
APPLICANT_COUNTED = "applicant_counted"  # the applicant counts through an earlier event
OUTSIDE_WINDOW = "outside_window"
OVER_CAP = "over_cap"
OVER_MONTHLY_CAP = "over_monthly_cap"
OUTCOMES = (
    COUNTED,
    NOT_QUALIFYING,
    SELF_REFERRAL,
    APPLICANT_COUNTED,
    OUTSIDE_WINDOW,
    OVER_CAP,
    OVER_MONTHLY_CAP,
)


@dataclass(frozen=True)
class Burst:
    """``count`` qualifying friends within ``window`` hold the rewards they reach for review."""

    count: int
    window: timedelta


@dataclass(frozen=True)
class Friend:
    """One applicant's winning event for a referrer, as the rules need it."""

    event_id: str
    occurred_at: datetime

    @property
    def order(self) -> tuple[datetime, str]:
        """The deterministic order of events: when they happened, then their id."""
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True)
class Tier:
    """A tier a referrer reaches: the friend count, the reward and whether it is held."""

    count: int
    reward: str
    reached_at: datetime
    reached_by: str
    held_reason: str = ""


@dataclass(frozen=True)
class Standing:
    """A referrer's recomputed standing: each friend's outcome, and the tiers reached."""

    outcomes: dict[str, str]
    tiers: list[Tier]


def first_valid(candidates: Sequence[Friend]) -> Friend | None:
    """The applicant's event that counts: the earliest valid one (ties: smallest event_id)."""
    return min(candidates, key=lambda f: f.order, default=None)


def evaluate(
    friends: Sequence[Friend], programme: ReferralProgramme, burst: Burst | None
) -> Standing:
    """Which of a referrer's winning events count, and the tiers the counted ones reach."""
    ordered = sorted(friends, key=lambda f: f.order)
    outcomes: dict[str, str] = {}
    counted: list[Friend] = []
    per_month: dict[tuple[int, int], int] = {}
    caps = programme.caps
    closes: datetime | None = None
    for f in ordered:
        if closes is None:
            closes = f.occurred_at + timedelta(days=programme.window_days)
        month = _month(f.occurred_at)
        if f.occurred_at >= closes:
            outcomes[f.event_id] = OUTSIDE_WINDOW
        elif caps.per_referrer is not None and len(counted) >= caps.per_referrer:
            outcomes[f.event_id] = OVER_CAP
        elif (
            caps.per_referrer_per_month is not None
            and per_month.get(month, 0) >= caps.per_referrer_per_month
        ):
            outcomes[f.event_id] = OVER_MONTHLY_CAP
        else:
            outcomes[f.event_id] = COUNTED
            counted.append(f)
            per_month[month] = per_month.get(month, 0) + 1
    return Standing(outcomes, reached(counted, programme, burst))


def reached(
    counted: Sequence[Friend], programme: ReferralProgramme, burst: Burst | None
) -> list[Tier]:
    """The tiers that counted friends (in order) reach, each held when a burst led to it."""
    suspicious = _in_bursts(counted, burst)
    tiers: list[Tier] = []
    previous = 0
    for tier in programme.tiers:
        if tier.count > len(counted):
            break
        reaching = counted[tier.count - 1]
        held = any(suspicious[previous : tier.count])
        reason = (
            f"burst: {burst.count} qualifying friends within {_span(burst.window)}"
            if held and burst
            else ""
        )
        tiers.append(Tier(tier.count, tier.reward, reaching.occurred_at, reaching.event_id, reason))
        previous = tier.count
    return tiers


def _in_bursts(counted: Sequence[Friend], burst: Burst | None) -> list[bool]:
    """For each counted friend: is it inside a span of ``burst.window`` with ``count`` friends?"""
    flags = [False] * len(counted)
    if burst is None:
        return flags
    lo = 0
    flagged_to = -1  # flags[: flagged_to + 1] already decided, so each friend is set once
    for hi, f in enumerate(counted):
        while f.occurred_at - counted[lo].occurred_at >= burst.window:
            lo += 1
        if hi - lo + 1 >= burst.count:
            for i in range(max(lo, flagged_to + 1), hi + 1):
                flags[i] = True
            flagged_to = hi
    return flags


def _month(at: datetime) -> tuple[int, int]:
    local = at.astimezone(SHANGHAI)
    return (local.year, local.month)


def _span(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 or minutes % 60 else f"{minutes // 60} h"
