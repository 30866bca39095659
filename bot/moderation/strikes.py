"""Strikes: count a member's moderation verdicts per group and say when to remove them.

:class:`StrikePolicy` is a value (how many strikes, over what window, for which classes);
:class:`StrikeBook` applies it over a :class:`StrikeRepository`, an interface that
``db.moderation_repositories.StrikeRepo`` implements over the ``moderation_strike`` table;
:class:`InMemoryStrikes` is the in-process implementation for unit tests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.moderation.detector import Verdict, VerdictClass
from bot.moderation.settings import ModerationSettings

__all__ = ["InMemoryStrikes", "StrikeBook", "StrikeDecision", "StrikePolicy", "StrikeRepository"]


class StrikeRepository(Protocol):
    """Where strikes are kept: one row per strike, by group and member."""

    def add(self, group_id: str, member_id: str, rule: str, at: datetime) -> None:
        """Record one strike."""
        ...

    def count(self, group_id: str, member_id: str, since: datetime | None) -> int:
        """Strikes of the member in the group at or after ``since`` (all when None)."""
        ...

    def clear(self, group_id: str, member_id: str) -> None:
        """Forget the member's strikes in the group (after removal, or a pardon)."""
        ...


@dataclass(frozen=True, slots=True)
class StrikeDecision:
    """The outcome of one strike: the count so far and whether the member goes."""

    strikes: int
    remove: bool
    remaining: int
    """Strikes left before removal (0 when ``remove``)."""


@dataclass(frozen=True, slots=True)
class StrikePolicy:
    """Remove a member at their ``remove_after``-th strike within ``window`` in one group.

    Only verdicts of the ``counted`` classes are strikes: ads and floods are the poster's
    doing to others; personal data is their own, so it gets a warning and no strike.
    """

    remove_after: int = 3
    window: timedelta | None = timedelta(days=30)
    counted: frozenset[VerdictClass] = field(default=frozenset({"ad", "flood"}))

    def __post_init__(self) -> None:
        if self.remove_after < 1:
            raise ValueError(f"remove_after must be at least 1, got {self.remove_after}")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError(f"window must be positive, got {self.window}")

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> StrikePolicy:
        """The policy the ``moderation:`` block of config.yaml sets."""
        return cls(remove_after=settings.strikes_to_remove, window=settings.strike_window)

    def counts(self, verdict: Verdict) -> bool:
        """True when the verdict is a strike under this policy."""
        return verdict.category in self.counted

    def since(self, at: datetime) -> datetime | None:
        """The oldest instant whose strikes still count at ``at``."""
        return None if self.window is None else at - self.window

    def decide(self, strikes: int) -> StrikeDecision:
        """What ``strikes`` strikes mean."""
        remove = strikes >= self.remove_after
        return StrikeDecision(strikes, remove, 0 if remove else self.remove_after - strikes)


class StrikeBook:
    """Records strikes under a policy; the caller removes the member when told to."""

    def __init__(self, policy: StrikePolicy, repository: StrikeRepository) -> None:
        self.policy = policy
        self.repository = repository

    def record(
        self, group_id: str, member_id: str, verdict: Verdict, at: datetime
    ) -> StrikeDecision | None:
        """Count the verdict if it is a strike; None when it is not one."""
        if not self.policy.counts(verdict):
            return None
        self.repository.add(group_id, member_id, verdict.rule, at)
        strikes = self.repository.count(group_id, member_id, self.policy.since(at))
        return self.policy.decide(strikes)


class InMemoryStrikes:
    """A :class:`StrikeRepository` in a dict, for tests and the simulator."""

    def __init__(self) -> None:
        self._at: defaultdict[tuple[str, str], list[datetime]] = defaultdict(list)

    def add(self, group_id: str, member_id: str, rule: str, at: datetime) -> None:
        """Record one strike (the rule is not needed to count)."""
        self._at[(group_id, member_id)].append(at)

    def count(self, group_id: str, member_id: str, since: datetime | None) -> int:
        """Strikes at or after ``since``."""
        kept = self._at.get((group_id, member_id), [])
        return len(kept) if since is None else sum(1 for t in kept if t >= since)

    def clear(self, group_id: str, member_id: str) -> None:
        """Forget the member's strikes in the group."""
        self._at.pop((group_id, member_id), None)
