"""Clocks: the only source of "now" for the domain.

The real clock follows the wall; the virtual clock only moves when a simulation moves it; the
scaled clock runs the wall faster (demo mode). All return aware datetimes in Asia/Shanghai.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def aware(dt: datetime) -> datetime:
    """Read a naive datetime as Asia/Shanghai; convert an aware one to Asia/Shanghai."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=SHANGHAI)
    return dt.astimezone(SHANGHAI)


class Clock(Protocol):
    """Tells the time and waits for it."""

    def now(self) -> datetime:
        """The current instant, aware, in Asia/Shanghai."""
        ...

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        """Return at ``when`` or as soon as ``wake`` is set, whichever comes first."""
        ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(SHANGHAI)

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class ScaledClock:
    """Wall time running ``speed`` times faster, starting at ``origin`` (demo mode)."""

    def __init__(self, origin: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._origin = aware(origin)
        self._speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._t0) * self._speed
        return self._origin + timedelta(seconds=elapsed)

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        delay = (when - self.now()).total_seconds() / self._speed
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class VirtualClock:
    """Time that moves only when told to; simulations step it from one due instant to the next."""

    def __init__(self, start: datetime) -> None:
        self._now = aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Move to ``when``; time never runs backwards."""
        when = aware(when)
        if when < self._now:
            raise ValueError(f"virtual clock cannot go back from {self._now} to {when}")
        self._now = when

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        # A virtual sleep is a jump: nothing else happens in between in a simulation.
        if when > self._now:
            self._now = aware(when)
        await asyncio.sleep(0)
