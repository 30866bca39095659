"""One retry policy for transient faults, on tenacity; the home of "is this fault passing?".

A *transient* fault is one that the same call can outlive: SQLite's "database is locked" or
"busy", a dropped or invalidated database connection, a PostgreSQL serialization failure or
deadlock, a network timeout on the way to a gateway or partner. Such a call is retried with
exponential backoff and jitter; anything else is *permanent* and raised at once, so the caller
records it with its reason. A transient fault that outlasts the policy is raised too (tenacity's
``reraise``): the caller must then keep the work for later, never record it done or dropped.

Used by the dispatcher for events; the scheduler and the outbox can take the same policy.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy.exc
from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from bot.privacy import mask_text

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "fault_reason", "is_transient"]

T = TypeVar("T")

# SQLite's own words for "another connection holds the lock; try again".
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "database table is locked")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient fault is retried (seconds).

    ``attempts`` counts the first call: 5 means up to 4 retries, waiting ``first_wait``,
    then doubling up to ``max_wait``, each wait with up to ``jitter`` added.
    """

    attempts: int = 5
    first_wait: float = 0.05
    max_wait: float = 2.0
    jitter: float = 0.05

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if min(self.first_wait, self.max_wait, self.jitter) < 0:
            raise ValueError("waits must not be negative")

    def _kwargs(self, what: str) -> dict[str, object]:
        return {
            "stop": stop_after_attempt(self.attempts),
            "wait": wait_exponential(multiplier=self.first_wait, max=self.max_wait)
            + wait_random(0, self.jitter),
            "retry": retry_if_exception(is_transient),
            "before_sleep": _log_retry(what),
            "reraise": True,
        }

    async def call_async(self, fn: Callable[[], Awaitable[T]], *, what: str) -> T:
        """Await ``fn()``, retrying it on transient faults; sleeps without blocking the loop."""
        async for attempt in AsyncRetrying(sleep=asyncio.sleep, **self._kwargs(what)):  # type: ignore[arg-type]
            with attempt:
                return await fn()
        raise AssertionError("unreachable: tenacity re-raises the last fault")  # pragma: no cover

    def call(self, fn: Callable[[], T], *, what: str) -> T:
        """Call ``fn()`` in this thread, retrying it on transient faults (for worker threads
        and synchronous services; never on the event loop, where it would sleep)."""
        for attempt in Retrying(sleep=time.sleep, **self._kwargs(what)):  # type: ignore[arg-type]
            with attempt:
                return fn()
        raise AssertionError("unreachable: tenacity re-raises the last fault")  # pragma: no cover


DEFAULT_POLICY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    """True when the same call may well succeed if tried again a little later."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return is_transient(exc.orig) if exc.orig is not None else False
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection free in time
        return True
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(words in message for words in _SQLITE_TRANSIENT)
    if _is_transient_psycopg(exc):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):  # asyncio timeouts are TimeoutError
        return True
    return _is_transient_network(exc)


def _is_transient_psycopg(exc: BaseException) -> bool:
    try:
        import psycopg
        from psycopg import errors
    except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs
        return False
    if isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected):
        return True
    # psycopg's OperationalError is the connection class of faults (server gone, refused,
    # admin shutdown); a bad statement is a ProgrammingError and stays permanent.
    return isinstance(exc, psycopg.OperationalError)


def _is_transient_network(exc: BaseException) -> bool:
    import httpx

    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError):
        return True
    try:
        from grpclib.const import Status
        from grpclib.exceptions import GRPCError
    except ImportError:  # pragma: no cover - only the Wechaty gateway needs grpclib
        return False
    return isinstance(exc, GRPCError) and exc.status in (
        Status.UNAVAILABLE,
        Status.DEADLINE_EXCEEDED,
    )


def fault_reason(exc: BaseException) -> str:
    """A one-line reason for a log or a record: the fault's type and message, personal data
    masked and long SQL cut short, and where it was raised (file:line, for whoever fixes it;
    a full traceback would repeat the message unmasked)."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > 300:
        text = text[:297] + "..."
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {mask_text(text)}{where}"


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.bind(what=what, attempt=state.attempt_number).warning(
            "transient fault in {}, retry {} in {:.2f}s: {}",
            what,
            state.attempt_number,
            wait,
            fault_reason(exc) if exc is not None else "?",
        )

    return log
