"""Storage of bot accounts: which account serves each group, and each account's last health."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import col

from db.models import AccountHealth, GroupAccount, OutboxPacing
from db.session import session_factory


class GroupAccountRepo:
    """``group_account``: the stored (sticky) account of every group."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def load(self) -> dict[str, str]:
        """Every stored assignment, group id to account id (plain rows, no ORM objects)."""
        with self._sessions() as s:
            rows = s.execute(sa.select(col(GroupAccount.group_id), col(GroupAccount.account)))
            return {group: account for group, account in rows}

    def save(self, changes: Mapping[str, str], at: datetime) -> int:
        """Store new or changed assignments in one transaction; returns how many were written."""
        if not changes:
            return 0
        with self._sessions() as s, s.begin():
            if s.get_bind().dialect.name == "postgresql":
                # Several processes start together and store the same plan: one at a time,
                # or two inserts of one group collide (key: an arbitrary constant of ours).
                s.execute(sa.text("SELECT pg_advisory_xact_lock(7004151)"))
            ids = list(changes)
            s.execute(sa.delete(GroupAccount).where(col(GroupAccount.group_id).in_(ids)))
            s.execute(
                sa.insert(GroupAccount),
                [{"group_id": g, "account": a, "assigned_at": at} for g, a in changes.items()],
            )
        return len(changes)


class AccountHealthRepo:
    """``account_health`` and the per-account send counts ``qunfu accounts`` shows."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def set(self, account: str, up: bool, last_error: str | None, at: datetime) -> None:
        """Record an account's health as the running bot sees it now."""
        with self._sessions() as s, s.begin():
            row = s.get(AccountHealth, account)
            if row is None:
                s.add(AccountHealth(account=account, up=up, last_error=last_error, changed_at=at))
            else:
                row.up, row.last_error, row.changed_at = up, last_error, at

    def all(self) -> dict[str, AccountHealth]:
        """Every recorded health, by account."""
        with self._sessions() as s:
            return {h.account: h for h in s.execute(sa.select(AccountHealth)).scalars()}

    def sends_on(self, day: date) -> dict[str, int]:
        """Gateway calls each account made on ``day`` (Asia/Shanghai), from its pacing row."""
        with self._sessions() as s:
            rows = s.execute(
                sa.select(col(OutboxPacing.account), col(OutboxPacing.day_calls)).where(
                    col(OutboxPacing.day) == day
                )
            )
            return {account: int(n) for account, n in rows}

