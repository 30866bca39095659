"""Paying rewards: CSV export for the bank, an optional signed push, and confirmations.

Status moves pending → sent → confirmed (held rewards wait for review, rejected ones stop);
every change is a row in ``referral_reward_history`` with who and when. A push is a signed
POST (same ``X-Qunfu-Signature`` scheme as inbound events) retried with the outbox's policy:
``outbox.backoff`` doubled per attempt up to ``outbox.max_backoff``, at most
``outbox.max_attempts`` attempts, after which the reward stays pending for export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import httpx
from loguru import logger
from sqlalchemy import Engine

from bot.config import OutboxSettings
from bot.privacy import mask
from bot.referrals.signatures import HEADER, sign
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
    """What one push round did."""

    sent: list[int]
    failed: list[int]


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
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.retry = retry
        self.push_url = push_url
        self.push_key = push_key
        self.timeout = timeout
        self.transport = transport
        self.queries = ReferralQueries(engine)

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
                    rid, allowed, status=to, updated_at=utc(now), next_attempt_at=None
                ):
                    store.add_history(row, row.status, to, now, by=by, note=note)
                    moved.append(rid)
        return moved

    def push_due(self, limit: int = 200) -> PushResult:
        """POST every pending, unsent reward whose next attempt is due; mark 2xx ones sent."""
        if not self.push_url or self.push_key is None:
            return PushResult([], [])
        now = self.clock.now()
        due = [
            r
            for r in self.queries.rewards(statuses=["pending"], limit=limit * 4)
            if r.attempts < self.retry.max_attempts
            and (r.next_attempt_at is None or r.next_attempt_at <= now)
        ][:limit]
        sent: list[int] = []
        failed: list[int] = []
        with httpx.Client(timeout=self.timeout.total_seconds(), transport=self.transport) as client:
            for r in due:
                error = self._post(client, r)
                if error is None:
                    sent += self.mark([r.id], "sent", "push", f"pushed to {self.push_url}")
                else:
                    failed.append(r.id)
                    self._failed(r, error)
        return PushResult(sent, failed)

    def _post(self, client: httpx.Client, r: RewardRow) -> str | None:
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
            "Idempotency-Key": f"qunfu-reward-{r.id}",
        }
        try:
            response = client.post(self.push_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _failed(self, r: RewardRow, error: str) -> None:
        attempts = r.attempts + 1
        delay = min(self.retry.backoff * 2 ** (attempts - 1), self.retry.max_backoff)
        retry_at = self.clock.now() + delay if attempts < self.retry.max_attempts else None
        with self.engine.begin() as conn:
            ReferralStore(conn).update_reward(
                r.id,
                ("pending",),
                attempts=attempts,
                next_attempt_at=utc(retry_at) if retry_at else None,
                last_error=error[:500],
            )
        logger.bind(reward=r.id, referrer=mask(r.referrer_id), attempt=attempts).warning(
            "reward push failed ({}); {}",
            error,
            f"retry at {retry_at.isoformat()}" if retry_at else "giving up: export it instead",
        )
