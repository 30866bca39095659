"""Pacing of one bot account: where its next send may go, given its last gateway call.

Sends sit on a grid of slots ``interval`` apart; each send goes out at a random instant inside
the first ``jitter`` of its slot, so jitter moves sends *within* the interval instead of adding
to it, and a backlog drains at the configured rate. The grid never runs ahead of the real calls:
the next slot starts no earlier than ``last call + interval - jitter``, so a late call (a busy
loop, a slow database) pushes the grid back instead of allowing a catch-up burst.

Why this is never above ``rate_per_minute`` in any 60-second window: with ``n = floor(rate)``
(at least 1) the interval is at least ``(60 s + jitter) / n``. Call ``k + n`` is no earlier than
slot ``k + n``, which is at least ``(n - 1)`` intervals after slot ``k + 1``, which starts no
earlier than ``call k + interval - jitter``; so ``call(k + n) - call(k) >= n * interval - jitter
>= 60 s``: no 60-second window holds ``n + 1`` calls. The price is that a backlog drains at
``60 / interval`` a minute, e.g. 19.5 instead of 20 with the shipped 20/min and 3 s of jitter
(jitter is capped at half the nominal interval, so two sends are never closer than that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

_WINDOW = 60.0


def _micro(seconds: float, rounding: object = math.ceil) -> timedelta:
    return timedelta(microseconds=int(rounding(seconds * 1_000_000)))  # type: ignore[operator]


@dataclass(frozen=True)
class Pacer:
    """The pacing rule of one account; values only, the state lives in ``outbox_pacing``."""

    rate_per_minute: float
    jitter: timedelta = timedelta(0)

    @property
    def cap(self) -> int:
        """Most sends allowed in any 60-second window."""
        return max(1, math.floor(self.rate_per_minute))

    @property
    def jitter_span(self) -> timedelta:
        """The jitter actually drawn: the configured one, at most half the nominal interval."""
        nominal = _WINDOW / self.rate_per_minute
        return _micro(min(self.jitter.total_seconds(), nominal / 2), math.floor)

    @property
    def interval(self) -> timedelta:
        """Distance between slot starts (rounded up to a microsecond, never below the cap)."""
        nominal = _WINDOW / self.rate_per_minute
        floor_for_cap = (_WINDOW + self.jitter_span.total_seconds()) / self.cap
        return _micro(max(nominal, floor_for_cap))

    @property
    def min_gap(self) -> timedelta:
        """The closest two consecutive calls of one account can be."""
        return self.interval - self.jitter_span

    def after_call(
        self, slot: datetime | None, call: datetime, draw: float
    ) -> tuple[datetime, datetime]:
        """The next slot and the instant inside it the next call may be made.

        ``slot`` is the slot the call used (None for an account that never sent), ``call`` the
        instant of the gateway call, ``draw`` a uniform random number in [0, 1).
        """
        earliest = call + self.min_gap
        nxt = earliest if slot is None else max(slot + self.interval, earliest)
        return nxt, nxt + self.jitter_span * draw

    def gate(self, due: datetime | None, last_call: datetime | None) -> datetime | None:
        """When the next call may be made, from the stored state (None: right away).

        ``last_call + min_gap`` is implied by ``due`` normally; it also guards state written
        under another rate or seeded by a migration.
        """
        times = [t for t in (due, last_call + self.min_gap if last_call else None) if t]
        return max(times) if times else None
