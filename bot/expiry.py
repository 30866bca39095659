"""Nothing expires silently: one private summary per campaign occurrence to ops contacts.

The outbox expires a marketing send that waited past ``outbox.grace`` (counted and logged one by
one, see :meth:`bot.outbox.Outbox.claim`). Once an occurrence's window has closed (fire time +
spread + grace, and a minute for the last claims), every send of it has either gone or expired;
:class:`ExpiryReport` then tells each ops contact, once, how many expired and on which accounts.
"Once" is a checkpoint row per reported occurrence (``expiry:<campaign>:<fire time>``), written in
the transaction that queues the summaries, so a restart neither repeats nor loses a summary.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from loguru import logger
from sqlmodel import Session

from bot.campaigns import CampaignPlanner
from bot.events import Say, contact_conv
from bot.outbox import ExpiredSend, Outbox, OutboxItem
from db.models import Checkpoint
from db.repositories import CheckpointRepo
from scheduler.clock import SHANGHAI, Clock

_MARGIN = timedelta(minutes=1)
_LOOKBACK = timedelta(days=2)


def expiry_message(campaign: str, fire_at: datetime, per_account: Counter[str]) -> str:
    """The summary ops contacts get (Chinese: they read it in the chat)."""
    total = sum(per_account.values())
    accounts = "、".join(f"{a} {n} 条" for a, n in sorted(per_account.items()))
    return (
        f"【发送过期】活动 {campaign}（{fire_at.astimezone(SHANGHAI):%m-%d %H:%M}）有 {total} 条"
        f"群消息超过宽限期未发出（{accounts}）。请增加机器人账号或加长 spread；"
        "`qunfu check` 会给出所需的账号数或时长，`qunfu outbox status` 可查看明细。"
    )


class ExpiryReport:
    """Summaries of expired sends, one per occurrence, to ``ops_contacts``."""

    def __init__(
        self,
        outbox: Outbox,
        checkpoints: CheckpointRepo,
        planner: Callable[[], CampaignPlanner],
        clock: Clock,
        grace: timedelta,
        ops_contacts: Sequence[str],
    ) -> None:
        self._outbox = outbox
        self._checkpoints = checkpoints
        self._planner = planner
        self._clock = clock
        self._grace = grace
        self._contacts = list(ops_contacts)
        self._seen = -1  # the outbox's expiry count when last looked; -1: look at start
        self._waiting: dict[tuple[str, str], datetime] = {}

    def next_due(self) -> datetime | None:
        """Now when sends expired since the last look; else when a waiting occurrence closes."""
        if self._outbox.expired != self._seen:
            return self._clock.now()
        return min(self._waiting.values()) if self._waiting else None

    async def run_due(self) -> int:
        """Report every closed occurrence with expired sends not reported yet; how many."""
        now = self._clock.now()
        if self._outbox.expired == self._seen and not any(
            due <= now for due in self._waiting.values()
        ):
            return 0
        self._seen = self._outbox.expired
        rows = await asyncio.to_thread(self._outbox.expired_rows, now - _LOOKBACK)
        return await asyncio.to_thread(self._report, rows, now)

    def _report(self, rows: list[ExpiredSend], now: datetime) -> int:
        by_occurrence: dict[tuple[str, str], Counter[str]] = {}
        for r in rows:
            if r.campaign_id and (occurrence := r.occurrence):
                by_occurrence.setdefault((r.campaign_id, occurrence), Counter())[r.account] += 1
        planner = self._planner()
        self._waiting = {}
        reported = 0
        for (campaign, occurrence), per_account in sorted(by_occurrence.items()):
            fire_at = datetime.fromisoformat(occurrence)
            known = planner.ops.campaigns.get(campaign)
            spread = known.schedule.spread if known is not None else timedelta(0)
            closes = fire_at + spread + self._grace + _MARGIN
            if closes > now:
                self._waiting[(campaign, occurrence)] = closes
                continue
            if self._summarise(campaign, fire_at, occurrence, per_account, now):
                reported += 1
        return reported

    def _summarise(
        self,
        campaign: str,
        fire_at: datetime,
        occurrence: str,
        per_account: Counter[str],
        now: datetime,
    ) -> bool:
        marker = f"expiry:{campaign}:{occurrence}"
        if self._checkpoints.get(marker) is not None:
            return False
        text = expiry_message(campaign, fire_at, per_account)
        items = [
            OutboxItem(key=f"{marker}:{c}", action=Say(contact_conv(c), text), not_before=now)
            for c in self._contacts
        ]

        def mark(s: Session) -> None:
            s.add(Checkpoint(name=marker, value=now))

        if items:
            self._outbox.enqueue(items, also=mark)
        else:
            self._checkpoints.set(marker, now)
        total = sum(per_account.values())
        logger.bind(campaign=campaign, fire_at=occurrence, expired=total).warning(
            "sends of this occurrence expired past outbox.grace: {}; ops told ({} contacts)",
            dict(per_account),
            len(self._contacts),
        )
        return True
