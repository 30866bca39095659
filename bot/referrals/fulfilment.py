"""Paying rewards: CSV export for the bank, an optional signed push, and confirmations.

Status moves pending → sent → confirmed (held rewards wait for review, rejected ones stop);
every change is a row in ``referral_reward_history`` with who and when. A push is a signed
POST (same ``X-Qunfu-Signature`` scheme as inbound events). A transient failure (no connection,
timeout, 5xx, 408, 429) is retried with the outbox's policy: ``outbox.backoff`` doubled per
attempt up to ``outbox.max_backoff``, at most ``outbox.max_attempts`` attempts, after which the
reward stays pending for export. Any other answer (a 4xx saying the request itself is wrong) is
permanent: recorded with its reason and not retried, left for ops. Every attempt is a history
row, and only a 2xx ever marks a reward sent. The running bot pushes from its time loop
(:meth:`RewardFulfilment.next_due` / :meth:`RewardFulfilment.run_due`); ``qunfu rewards push``
runs one round by hand.

Several processes (``qunfu run`` on PostgreSQL, or a hand-run push beside it) push exactly once
between them: each reward is claimed in its own committed transaction before its POST
(``claimed_by``/``claimed_until``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and a claimed
reward is not due for anyone else. The push clears the claim when it ends. A claim whose holder
died lapses after :meth:`RewardFulfilment.lease` and the reward is pushed again with the same
``Idempotency-Key``, which the partner uses to drop a repeat of a POST that did land.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic

import httpx
from loguru import logger
from sqlalchemy import Engine

from bot.config import OutboxSettings
from bot.leases import holder_id
from bot.privacy import mask
from bot.referrals.signatures import HEADER, sign
from bot.retry import is_transient
from db.referral_repositories import ReferralQueries, ReferralStore, RewardRow
from db.repositories import utc
from scheduler.clock import SHANGHAI, Clock

EXPORT_COLUMNS = (
    "reward_id",
    "referrer",
    "tier",
    "reward",
    "status",
    "reached_at",
    "reached_by_event",
    "decided_by",
    "decided_at",
    "note",
)


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) in Asia/Shanghai, as aware instants."""
    start = datetime.combine(first, time(), SHANGHAI)
    return start, datetime.combine(last + timedelta(days=1), time(), SHANGHAI)


def export_csv(rows: Sequence[RewardRow]) -> str:
    """Rewards as CSV for the bank (times in Asia/Shanghai)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.id,
                r.referrer_id,
                r.tier,
                r.reward,
                r.status,
                r.reached_at.astimezone(SHANGHAI).isoformat(),
                r.reached_by,
                r.decided_by or "",
                r.decided_at.astimezone(SHANGHAI).isoformat() if r.decided_at else "",
                r.decision_note or r.held_reason,
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class PushResult:
    """What one push round did: rewards sent, failed for now (retried later) and refused."""

    sent: list[int]
    failed: list[int]
    refused: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Failure:
    """Why one push did not land, and whether trying again may help."""

    reason: str
    transient: bool


# Statuses that say "not now" rather than "never": the same request may be accepted later.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


def _transient_status(code: int) -> bool:
    return code >= 500 or code in _TRANSIENT_STATUSES


def _transient_fault(exc: httpx.HTTPError) -> bool:
    """A connection that failed or broke is worth another try; a bad URL or scheme is not."""
    if is_transient(exc):
        return True
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol)


# A live pass stops starting new pushes after this long; the outbox is delivered after it.
LIVE_PASS_BUDGET_S = 3.0


class RewardFulfilment:
    """Exports, pushes and confirms rewards."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        retry: OutboxSettings,
        *,
        push_url: str | None = None,
        push_key: bytes | None = None,
        timeout: timedelta = timedelta(seconds=10),
        transport: httpx.BaseTransport | None = None,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.retry = retry
        self.push_url = push_url
        self.push_key = push_key
        self.timeout = timeout
        self.transport = transport
        self.queries = ReferralQueries(engine)
        # This process's name on its push claims (host:pid:random, as on account leases).
        self.holder = holder or holder_id()

    @property
    def lease(self) -> timedelta:
        """How long a push claim lasts: well past the longest a live POST can take (httpx
        applies the timeout to connect, write and read each), so only a holder that died
        loses its claim."""
        return self.timeout * 4 + timedelta(seconds=30)

    def export(self, first: date, last: date, statuses: Sequence[str] | None = None) -> str:
        """CSV of rewards reached between two days (inclusive, Asia/Shanghai)."""
        start, end = day_range(first, last)
        return export_csv(
            self.queries.rewards(reached_from=start, reached_to=end, statuses=statuses)
        )

    def mark(self, reward_ids: Sequence[int], to: str, by: str, note: str = "") -> list[int]:
        """Move rewards forward (pending → sent, sent → confirmed); the ids that moved."""
        allowed = {"sent": ("pending",), "confirmed": ("pending", "sent")}[to]
        now = self.clock.now()
        moved: list[int] = []
        with self.engine.begin() as conn:
            store = ReferralStore(conn)
            for rid in reward_ids:
                row = store.reward(rid)
                if row is None or row.status not in allowed:
                    continue
                if store.update_reward(
                    rid,
                    allowed,
                    status=to,
                    updated_at=utc(now),
                    next_attempt_at=None,
                    claimed_by=None,
                    claimed_until=None,
                ):
                    store.add_history(row, row.status, to, now, by=by, note=note)
                    moved.append(rid)
        return moved

    def next_due(self) -> datetime | None:
        """When a push is next due (None when pushing is off or nothing is waiting)."""
        if not self.push_url or self.push_key is None:
            return None
        return self.queries.next_push_at(self.retry.max_attempts, self.clock.now())

    async def run_due(self) -> PushResult:
        """Push what is due, for the time loop: the database and HTTP work run in a worker
        thread, so a slow partner never stalls the event loop."""
        if not self.push_url or self.push_key is None:
            return PushResult([], [])
        return await asyncio.to_thread(self.push_due, 200, LIVE_PASS_BUDGET_S)

    def push_due(self, limit: int = 200, budget_s: float | None = None) -> PushResult:
        """POST every pending reward whose next attempt is due; mark 2xx ones sent.

        ``budget_s`` bounds the pass in wall time (the live loop passes a few seconds, so a
        slow partner never holds back the outbox behind it); what is left stays due.
        """
        if not self.push_url or self.push_key is None:
            return PushResult([], [])
        result = PushResult([], [])
        started = monotonic()
        with httpx.Client(timeout=self.timeout.total_seconds(), transport=self.transport) as client:
            for _ in range(limit):
                if budget_s is not None and monotonic() - started > budget_s:
                    break
                r = self._claim()
                if r is None:
                    break
                failure = self._post(client, r)
                if failure is None:
                    note = f"pushed to {self.push_url} (attempt {r.attempts + 1})"
                    result.sent.extend(self.mark([r.id], "sent", "push", note))
                elif failure.transient:
                    result.failed.append(r.id)
                    self._failed(r, failure)
                else:
                    result.refused.append(r.id)
                    self._failed(r, failure)
        return result

    def _claim(self) -> RewardRow | None:
        """Claim the next due reward for this process, committed before any POST is made."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            return ReferralStore(conn).claim_push(
                now, self.retry.max_attempts, self.holder, now + self.lease
            )

    def _post(self, client: httpx.Client, r: RewardRow) -> _Failure | None:
        assert self.push_url is not None and self.push_key is not None
        body = json.dumps(
            {
                "reward_id": r.id,
                "referrer": r.referrer_id,
                "tier": r.tier,
                "reward": r.reward,
                "reached_at": r.reached_at.astimezone(SHANGHAI).isoformat(),
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "content-type": "application/json",
            HEADER: sign(self.push_key, body, self.clock.now()),
            # The partner can drop a repeat: a 2xx whose answer was lost is pushed again.
            "Idempotency-Key": f"qunfu-reward-{r.id}",
        }
        try:
            response = client.post(self.push_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return _Failure(f"{type(exc).__name__}: {exc}", _transient_fault(exc))
        if 200 <= response.status_code < 300:
            return None
        detail = " ".join(response.text.split())[:200]
        reason = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
        return _Failure(reason, _transient_status(response.status_code))

    def _failed(self, r: RewardRow, failure: _Failure) -> None:
        """Record a failed attempt: when to try again, or that nobody will (a permanent refusal
        or the last attempt), as the reward's state and as a history row."""
        now = self.clock.now()
        attempts = r.attempts + 1
        delay = min(self.retry.backoff * 2 ** (attempts - 1), self.retry.max_backoff)
        retry_at = now + delay if failure.transient and attempts < self.retry.max_attempts else None
        if retry_at is not None:
            outcome = f"retry at {retry_at.astimezone(SHANGHAI).isoformat()}"
        elif failure.transient:
            outcome = "no attempts left: export it instead"
        else:
            outcome = "permanent: not retried, left for ops (fix and export, or reject)"
        note = f"push attempt {attempts} failed: {failure.reason}; {outcome}"
        with self.engine.begin() as conn:
            store = ReferralStore(conn)
            changed = store.update_reward(
                r.id,
                ("pending",),
                # Only while this process still holds the claim: one that lapsed may be in
                # another process's hands now, and its outcome is that process's to record.
                holder=self.holder,
                claimed_by=None,
                claimed_until=None,
                # A permanent refusal uses up the attempts, so no later round tries it again.
                attempts=attempts if failure.transient else max(attempts, self.retry.max_attempts),
                next_attempt_at=utc(retry_at) if retry_at else None,
                last_error=failure.reason[:500],
                updated_at=utc(now),
            )
            if changed:
                store.add_history(r, "pending", "pending", now, by="push", note=note[:1000])
        log = logger.bind(reward=r.id, referrer=mask(r.referrer_id), attempt=attempts)
        (log.warning if retry_at else log.error)("reward push failed: {}", note)
