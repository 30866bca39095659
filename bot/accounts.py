"""Bot accounts (DESIGN.md core loop 5): which account serves each group, and sends each item.

Each group is served by one account: the directory's ``account:`` when it names a configured
account, else the one stored for it (sticky), else, for a group new to the bot, the account that
serves the fewest groups (balanced; ties go to the account listed first, groups are taken in id
order, so the result is deterministic). Every assignment is stored (``group_account``), pinned
ones too, so removing a pin leaves a group where it was. A group whose stored account left
config.yaml is assigned again like a new one.

:class:`AccountBook` is the live view: it tells the outbox which account sends each item (a
group's messages, invitations and removals through the group's account; a private message
through the account the person last wrote to, else the default account, the first listed) and
which accounts this process sends for (:meth:`AccountBook.local_accounts`; today every account,
the seam where a lease manager will restrict it).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import Engine

from bot.config import AccountSettings, Settings
from bot.events import Event, Invite, LocationShared, MessageReceived, Remove, Say, parse_conv
from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WelfareGroup
from db.account_repositories import AccountHealthRepo, GroupAccountRepo
from scheduler.clock import SHANGHAI

_CONTACTS_REMEMBERED = 100_000  # people whose account is remembered (most recent first)


def env_name(account_id: str, what: str) -> str:
    """The environment variable of one account's setting, e.g. ``QUNFU_ACCOUNT_BOT_A_TOKEN``."""
    return f"QUNFU_ACCOUNT_{re.sub(r'[^A-Z0-9]', '_', account_id.upper())}_{what.upper()}"


def assign_accounts(
    groups: Iterable[WelfareGroup], accounts: Sequence[str], stored: Mapping[str, str]
) -> dict[str, str]:
    """Every group's account: pinned, else stored (sticky), else balanced (see module doc).

    Deterministic in its inputs; adding groups never moves a group already stored.
    """
    if not accounts:
        raise ValueError("at least one bot account is needed")
    known = set(accounts)
    result: dict[str, str] = {}
    new: list[str] = []
    for group in groups:
        if group.account in known:
            result[group.id] = group.account  # type: ignore[assignment]
        elif stored.get(group.id) in known:
            result[group.id] = stored[group.id]
        else:
            new.append(group.id)
    counts = dict.fromkeys(accounts, 0)
    for account in result.values():
        counts[account] += 1
    order = {a: i for i, a in enumerate(accounts)}
    for group_id in sorted(new):
        account = min(accounts, key=lambda a: (counts[a], order[a]))
        result[group_id] = account
        counts[account] += 1
    return result


@dataclass(frozen=True)
class AccountMap:
    """One ops-data version's accounts and the account of each of its groups."""

    accounts: tuple[AccountSettings, ...]
    of_group: Mapping[str, str] = field(default_factory=dict)

    @property
    def default(self) -> str:
        """The first account listed: private messages to people it does not know go here."""
        return self.accounts[0].id

    @property
    def ids(self) -> tuple[str, ...]:
        """Every account id, in config order."""
        return tuple(a.id for a in self.accounts)

    def for_group(self, group_id: str) -> str:
        """The account serving ``group_id`` (the default one for a group it does not know)."""
        return self.of_group.get(group_id, self.default)

    def group_counts(self) -> dict[str, int]:
        """How many groups each account serves (every account listed, zeros included)."""
        counts = dict.fromkeys(self.ids, 0)
        for account in self.of_group.values():
            counts[account] = counts.get(account, 0) + 1
        return counts

    def settings(self, account_id: str) -> AccountSettings | None:
        """The configured account with this id."""
        return next((a for a in self.accounts if a.id == account_id), None)


def plan_accounts(
    groups: Iterable[WelfareGroup],
    accounts: Sequence[AccountSettings],
    stored: Mapping[str, str],
) -> tuple[AccountMap, dict[str, str]]:
    """The map for ``groups`` and the assignments that differ from ``stored`` (to be saved)."""
    groups = list(groups)
    for g in groups:
        if g.account is not None and g.account not in {a.id for a in accounts}:
            logger.bind(group=g.id, account=g.account).error(
                "group names an account missing from config.yaml `accounts:`; assigned instead"
            )
    of_group = assign_accounts(groups, [a.id for a in accounts], stored)
    changes = {g: a for g, a in of_group.items() if stored.get(g) != a}
    return AccountMap(tuple(accounts), of_group), changes


class AccountBook:
    """The live accounts: routing of outbox items, people's accounts, the local accounts."""

    def __init__(self, accounts: Sequence[AccountSettings]) -> None:
        self._map = AccountMap(tuple(accounts))
        self._contacts: OrderedDict[str, str] = OrderedDict()
        self.held: Callable[[], frozenset[str]] | None = None
        """The accounts this process holds a lease on (several processes); None: all."""

    @property
    def map(self) -> AccountMap:
        """The live map (a reload swaps it whole)."""
        return self._map

    def swap(self, new: AccountMap) -> None:
        """Put a new ops-data version's map live."""
        self._map = new

    def local_accounts(self) -> frozenset[str]:
        """The accounts this process sends for: every account, or on PostgreSQL with several
        processes those whose lease it holds (:attr:`held`, set by bot.leases)."""
        ids = frozenset(self._map.ids)
        return ids if self.held is None else ids & self.held()

    def serves_here(self, group_id: str) -> bool:
        """Whether this process sends for ``group_id``'s account (its per-group work is ours)."""
        return self.held is None or self._map.for_group(group_id) in self.local_accounts()

    def saw(self, event: Event) -> None:
        """Remember which account a person wrote to privately, so replies go back through it."""
        if isinstance(event, MessageReceived | LocationShared) and event.room_id is None:
            account = getattr(event, "account", "")
            if account and account in self._map.ids:
                self._contacts[event.sender.id] = account
                self._contacts.move_to_end(event.sender.id)
                if len(self._contacts) > _CONTACTS_REMEMBERED:
                    self._contacts.popitem(last=False)

    def for_contact(self, contact_id: str, asked: str | None = None) -> str:
        """The account a private message to ``contact_id`` goes through."""
        known = self._contacts.get(contact_id)
        if known is not None:
            return known
        return asked if asked in self._map.ids else self._map.default  # type: ignore[return-value]

    def account_for(self, action: Say | Invite | Remove, asked: str | None = None) -> str:
        """The account that performs ``action``: a group's own account for anything in a group."""
        if isinstance(action, Invite | Remove):
            return self._map.for_group(action.room)
        kind, ident = parse_conv(action.to)
        if kind == "room":
            return self._map.for_group(ident)
        return self.for_contact(ident, asked)

    def router(self) -> Callable[[Say | Invite | Remove, str | None], str]:
        """:meth:`account_for`, as the outbox takes it."""
        return self.account_for


def health_message(account: AccountSettings, up: bool, error: str | None, at: datetime) -> str:
    """The private message ops contacts get when an account goes down or comes back."""
    when = at.strftime("%m-%d %H:%M")
    if up:
        return f"【账号恢复】机器人账号 {account.id}（{account.name}）已恢复发送（{when}）。"
    reason = f"：{error}" if error else ""
    return (
        f"【账号异常】机器人账号 {account.id}（{account.name}）无法发送{reason}（{when}）。"
        "其服务的群消息暂停等待；营销消息超过宽限期将过期。请检查该账号或把群移到其他账号。"
    )


class AccountHealthWatch:
    """Notices an account going down or coming back (from the gateway), records it for
    ``qunfu accounts`` and tells ops contacts privately, once per change.

    An account still connecting (not ready, no error yet) is not reported down.
    """

    def __init__(
        self,
        book: AccountBook,
        record: Callable[[str, bool, str | None, datetime], None],
        tell_ops: Callable[[str, str, str], Awaitable[None]],
    ) -> None:
        self._book = book
        self._record = record
        self._tell_ops = tell_ops
        self._known: dict[str, bool] = {}

    async def look(self, gateway: object, now: datetime) -> None:
        """Compare each local account's health now with the last seen; act on changes."""
        via = getattr(gateway, "via", None)
        for account in self._book.map.accounts:
            if account.id not in self._book.local_accounts():
                continue
            sender = via(account.id) if callable(via) else gateway
            up, error = _health(sender)
            before = self._known.get(account.id)
            if before == up or (not up and error is None):
                continue
            self._known[account.id] = up
            await asyncio.to_thread(self._record, account.id, up, error, now)
            if up and before is None:
                continue  # first sight of a working account: nothing to tell
            logger.bind(account=account.id, error=error).log(
                "INFO" if up else "ERROR", "bot account {}", "back up" if up else "down"
            )
            text = health_message(account, up, error, now)
            await self._tell_ops(f"account-health:{account.id}:{now.isoformat()}", text, account.id)


def _health(sender: object) -> tuple[bool, str | None]:
    """``(ready, last error)`` of one account's gateway, as far as it says."""
    ready = getattr(sender, "ready", None)
    up = bool(ready()) if callable(ready) else True
    error = getattr(sender, "last_error", None)
    if error is None and callable(health := getattr(sender, "health", None)):
        error = health().get("last_error")
    return up, (str(error) if error else None)


def stored_account_map(settings: Settings, ops: OpsData) -> AccountMap:
    """The accounts of ``ops``'s groups as the bot would have them: the stored assignments of
    the configured database when it can be read (nothing is created or written), then pins and
    balance. For ``qunfu preview`` and ``qunfu accounts``."""
    stored: dict[str, str] = {}
    try:
        from sqlalchemy import create_engine

        url = settings.database.url
        if not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists():
            engine = create_engine(url)
            try:
                stored = GroupAccountRepo(engine).load()
            finally:
                engine.dispose()
    except Exception as exc:  # safe: an unreadable database only loses stickiness here
        logger.debug("stored group accounts not read: {}", exc)
    amap, _ = plan_accounts(ops.groups.values(), settings.bot_accounts(), stored)
    return amap


def account_overview(
    settings: Settings, ops: OpsData, engine: Engine, now: datetime
) -> list[dict[str, Any]]:
    """One row per account for ``qunfu accounts``: groups, sends today, cap, rate, health."""
    amap, _ = plan_accounts(
        ops.groups.values(), settings.bot_accounts(), GroupAccountRepo(engine).load()
    )
    counts = amap.group_counts()
    repo = AccountHealthRepo(engine)
    today = repo.sends_on(now.astimezone(SHANGHAI).date())
    health = repo.all()
    rows = []
    for a in amap.accounts:
        h = health.get(a.id)
        rows.append(
            {
                "account": a.id,
                "name": a.name,
                "groups": counts.get(a.id, 0),
                "sent_today": today.get(a.id, 0),
                "daily_cap": a.daily_cap,
                "rate_per_minute": a.rate_per_minute,
                "health": "unknown" if h is None else ("up" if h.up else "down"),
                "last_error": h.last_error if h is not None else None,
                "since": h.changed_at.astimezone(SHANGHAI).isoformat() if h is not None else None,
            }
        )
    return rows
