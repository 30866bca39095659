"""Capacity is planned, not discovered: can the accounts deliver each occurrence in time?

An occurrence's sends to an account's groups are spread over the campaign's ``spread`` and paced
at the account's rate; what is not sent within ``spread + outbox.grace`` of the fire time expires.
So an account serving ``n`` of a campaign's groups delivers them all only if
``(n - 1) * interval <= spread + grace`` (``interval`` is the pacer's real distance between two
sends, jitter included: :class:`bot.pacing.Pacer`) and ``n`` is within its daily cap.
:func:`capacity_warnings` says, at the campaign, how many accounts or how much spread it needs.
No template is rendered and no database is read: the groups' accounts are the directory's
``account:`` and, for the others, the balanced assignment a fresh database would give.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.accounts import AccountMap, assign_accounts
from bot.campaigns import CampaignPlanner
from bot.opsdata.bundle import OpsData
from bot.opsdata.problems import Problem
from bot.pacing import Pacer

if TYPE_CHECKING:
    from bot.config import AccountSettings, Settings


def deliverable(pacer: Pacer, window: timedelta) -> int:
    """How many sends one account makes within ``window`` of its first one."""
    return math.floor(window / pacer.interval) + 1


def _duration(d: timedelta) -> str:
    minutes = math.ceil(d.total_seconds() / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


def capacity_warnings(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    """A warning per scheduled campaign whose occurrence the accounts cannot deliver in time."""
    accounts = settings.bot_accounts()
    by_id = {a.id: a for a in accounts}
    amap = AccountMap(tuple(accounts), assign_accounts(ops.groups.values(), list(by_id), {}))
    planner = CampaignPlanner(ops, settings.quiet_hours, accounts=amap)
    grace = settings.outbox.grace
    found = []
    for campaign in planner.scheduled_campaigns():
        source = ops.campaign_sources.get(campaign.id)
        targets = planner.targets(campaign)
        if source is None or not targets:
            continue
        per_account = Counter(amap.for_group(g.id) for g in targets)
        window = campaign.schedule.spread + grace
        short = {
            a: n
            for a, n in per_account.items()
            if n > _limit(by_id[a], settings, window)
        }
        if not short:
            continue
        found.append(
            source.warning((), _message(len(targets), per_account, short, by_id, settings, window))
        )
    return found


def _pacer(account: AccountSettings, settings: Settings) -> Pacer:
    return Pacer(account.rate_per_minute or settings.outbox.rate_per_minute, settings.outbox.jitter)


def _limit(account: AccountSettings, settings: Settings, window: timedelta) -> int:
    n = deliverable(_pacer(account, settings), window)
    return min(n, account.daily_cap) if account.daily_cap is not None else n


def _message(
    total: int,
    per_account: Counter[str],
    short: dict[str, int],
    by_id: dict[str, AccountSettings],
    settings: Settings,
    window: timedelta,
) -> str:
    grace = settings.outbox.grace
    spread = window - grace
    can = sum(min(n, _limit(by_id[a], settings, window)) for a, n in per_account.items())
    # Accounts needed at the slowest serving account's rate, groups balanced over them.
    slowest = min((by_id[a] for a in per_account), key=lambda a: _limit(a, settings, window))
    each = _limit(slowest, settings, window)
    needed = math.ceil(total / each) if each else None
    # Spread needed with the accounts it has: the busiest account's last send in the window.
    worst = max(
        (n - 1) * _pacer(by_id[a], settings).interval - grace
        for a, n in short.items()
    )
    capped = any(
        by_id[a].daily_cap is not None and n > (by_id[a].daily_cap or 0) for a, n in short.items()
    )
    names = ", ".join(f"{a} {n}" for a, n in sorted(short.items()))
    used = len(per_account)
    text = (
        f"an occurrence sends {total} messages but its {used} account"
        f"{'' if used == 1 else 's'} can deliver about {can} within spread "
        f"{_duration(spread)} + outbox.grace {_duration(grace)} (too many groups on: {names}); "
        "the rest would expire"
    )
    advice = []
    if needed is not None:
        advice.append(f"{needed} accounts at {slowest.rate_per_minute:g}/min")
    if not capped:
        advice.append(f"a spread of at least {_duration(max(worst, spread))}")
    return text + ("; it needs " + " or ".join(advice) if advice else "")
