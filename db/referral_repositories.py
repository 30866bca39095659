"""Storage of the referral ledger: events, rewards and reward history, in SQLAlchemy Core.

The ledger writes inside one transaction per event (:class:`ReferralStore` takes the open
connection). Plain Core statements, not ORM objects: the webhook path runs once per partner
event and reads only the rows of one applicant and one referrer. Its statements are compiled
once per dialect and run on the driver's cursor (:mod:`db.driver_statements`), inside the
transaction SQLAlchemy holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from db.driver_statements import DriverCursor, DriverStatements
from db.models import ReferralEventRow, ReferralReward, ReferralRewardHistory
from db.repositories import utc

EVENTS: sa.Table = ReferralEventRow.__table__  # type: ignore[attr-defined]
REWARDS: sa.Table = ReferralReward.__table__  # type: ignore[attr-defined]
HISTORY: sa.Table = ReferralRewardHistory.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Candidate:
    """An applicant's valid qualifying event, as counting across referrers needs it."""

    id: int
    event_id: str
    referrer_id: str
    occurred_at: datetime
    wins: bool


@dataclass(frozen=True)
class RewardRow:
    """A reward as stored."""

    id: int
    referrer_id: str
    tier: int
    reward: str
    status: str
    held_reason: str
    reached_at: datetime
    reached_by: str
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    claimed_by: str | None = None
    claimed_until: datetime | None = None


def _reward(row: Any) -> RewardRow:
    return RewardRow(**{f: row._mapping[f] for f in RewardRow.__dataclass_fields__})


_REWARD_COLUMNS = tuple(REWARDS.c.keys())


def _reward_of(row: Sequence[Any]) -> RewardRow:
    """A reward from a driver row of ``SELECT referral_reward.*`` (columns in table order)."""
    values = dict(zip(_REWARD_COLUMNS, row, strict=True))
    return RewardRow(**{f: values[f] for f in RewardRow.__dataclass_fields__})


_E = EVENTS.c
_R = REWARDS.c
_EVENT_KEYS = (
    "event_id",
    "type",
    "referral_code",
    "referrer_id",
    "applicant",
    "referrer_applicant",
    "occurred_at",
    "received_at",
    "source",
    "wins",
    "outcome",
)
_REWARD_KEYS = (
    "referrer_id",
    "tier",
    "reward",
    "status",
    "held_reason",
    "reached_at",
    "reached_by",
    "created_at",
    "updated_at",
    "decision_note",
    "attempts",
    "last_error",
)
_HISTORY_KEYS = ("reward_id", "referrer_id", "tier", "from_status", "to_status", "at", "by", "note")
_VALID_CANDIDATE = sa.and_(
    _E.applicant == sa.bindparam("applicant"),
    _E.type == sa.bindparam("type"),
    sa.or_(_E.referrer_applicant.is_(None), _E.referrer_applicant != _E.applicant),
)


def _insert_ignore(table: sa.Table, conflict: list[str], dialect: str) -> sa.Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)


def _by_id(column: sa.Column[Any]) -> sa.ColumnElement[bool]:
    return column == sa.bindparam("_id")


# The webhook path's statements, compiled once per dialect and run on the driver's cursor
# (db.driver_statements): a partner event runs two to six of them.
_DRIVER = {
    dialect: DriverStatements(
        {
            "event": (_insert_ignore(EVENTS, ["event_id"], dialect), _EVENT_KEYS),
            "reward": (_insert_ignore(REWARDS, ["referrer_id", "tier"], dialect), _REWARD_KEYS),
            "history": (sa.insert(HISTORY), _HISTORY_KEYS),
            "lock": (
                sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("key", type_=sa.BigInteger))),
                None,
            ),
            "candidates": (
                sa.select(_E.id, _E.event_id, _E.referrer_id, _E.occurred_at, _E.wins).where(
                    _VALID_CANDIDATE
                ),
                None,
            ),
            "winners": (
                sa.select(_E.id, _E.event_id, _E.occurred_at, _E.outcome).where(
                    _E.referrer_id == sa.bindparam("referrer"), _E.wins.is_(True)
                ),
                None,
            ),
            # The applicant's candidates and the referrer's winners in one read.
            "both": (
                sa.select(
                    _E.id,
                    _E.event_id,
                    _E.referrer_id,
                    _E.occurred_at,
                    _E.wins,
                    _E.outcome,
                    _E.applicant,
                ).where(
                    sa.or_(
                        _VALID_CANDIDATE,
                        sa.and_(_E.referrer_id == sa.bindparam("referrer"), _E.wins.is_(True)),
                    )
                ),
                None,
            ),
            "outcome": (
                sa.update(EVENTS).where(_by_id(_E.id)).values(outcome=sa.bindparam("_outcome")),
                None,
            ),
            "lose": (
                sa.update(EVENTS)
                .where(_by_id(_E.id))
                .values(wins=False, outcome=sa.bindparam("_outcome")),
                None,
            ),
            "win": (sa.update(EVENTS).where(_by_id(_E.id)).values(wins=True), None),
            "rewards_of": (
                sa.select(REWARDS)
                .where(_R.referrer_id == sa.bindparam("referrer"))
                .order_by(_R.tier),
                None,
            ),
        }
    )
    for dialect in ("postgresql", "sqlite")
}


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` (a collision only serialises more)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ReferralStore:
    """The ledger's reads and writes inside one open transaction (the caller commits)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self._driver: DriverCursor | None = None

    @property
    def driver(self) -> DriverCursor:
        """The hot statements' cursor on this transaction's connection (opened on first use)."""
        if self._driver is None:
            self._driver = DriverCursor(self.conn, _DRIVER[self.dialect])
        return self._driver

    # --- events ----------------------------------------------------------------------------

    def insert_event(self, values: dict[str, Any]) -> int | None:
        """Insert an event unless its ``event_id`` is stored; the new row id, or None (replay).

        On SQLite this is the transaction's first statement, so it takes the write lock before
        anything is read and the rest of the transaction sees a stable database.
        """
        rows = self.driver.execute("event", values)
        return int(rows[0][0]) if rows else None

    def lock(self, names: Iterable[str]) -> None:
        """Serialise writers on these names until commit (PostgreSQL; SQLite has one writer)."""
        if self.dialect != "postgresql":
            return
        for name in sorted(set(names)):
            self.driver.execute("lock", {"key": lock_key(name)})

    def candidates(self, applicant: str, event_type: str) -> list[Candidate]:
        """The applicant's valid events of the qualifying type (self-referrals left out)."""
        rows = self.driver.execute("candidates", {"applicant": applicant, "type": event_type})
        return [Candidate(*r) for r in rows]

    @property
    def single_writer(self) -> bool:
        """True on SQLite: the transaction holds the database's only write lock."""
        return self.dialect == "sqlite"

    def candidates_and_winners(
        self, applicant: str, event_type: str, referrer_id: str
    ) -> tuple[list[Candidate], list[tuple[int, str, datetime, str]]]:
        """:meth:`candidates` and :meth:`winners_of` in one round trip (single writer only:
        elsewhere the referrer's rows must be read after its lock is taken)."""
        rows = self.driver.execute(
            "both", {"applicant": applicant, "type": event_type, "referrer": referrer_id}
        )
        candidates = [Candidate(r[0], r[1], r[2], r[3], r[4]) for r in rows if r[6] == applicant]
        winners = [(r[0], r[1], r[3], r[5]) for r in rows if r[2] == referrer_id and r[4]]
        return candidates, winners

    def lose(self, ids: Sequence[int], outcome: str) -> None:
        """These events no longer win their applicant; record why."""
        self.driver.execute_many("lose", [{"_id": i, "_outcome": outcome} for i in ids])

    def win(self, row_id: int) -> None:
        """This event now wins its applicant (its outcome follows from the recount)."""
        self.driver.execute("win", {"_id": row_id})

    def set_outcomes(self, outcomes: Sequence[tuple[int, str]]) -> None:
        """Set each (row id, outcome) in one executemany."""
        self.driver.execute_many("outcome", [{"_id": i, "_outcome": o} for i, o in outcomes])

    def winners_of(self, referrer_id: str) -> list[tuple[int, str, datetime, str]]:
        """(id, event_id, occurred_at, outcome) of the referrer's applicant-winning events."""
        rows = self.driver.execute("winners", {"referrer": referrer_id})
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # --- rewards ---------------------------------------------------------------------------

    def rewards_of(self, referrer_id: str) -> list[RewardRow]:
        """The referrer's rewards, by tier."""
        rows = self.driver.execute("rewards_of", {"referrer": referrer_id})
        return [_reward_of(r) for r in rows]

    def insert_reward(self, values: dict[str, Any]) -> int | None:
        """Insert a reward unless (referrer, tier) exists; the new id, or None."""
        rows = self.driver.execute("reward", values)
        return int(rows[0][0]) if rows else None

    def update_reward(
        self,
        reward_id: int,
        only_if: Sequence[str],
        *,
        holder: str | None = None,
        **values: Any,
    ) -> bool:
        """Update a reward when its status is one of ``only_if`` (and, with ``holder``, while
        that process's push claim is on it); True when it was."""
        stmt = sa.update(REWARDS).where(REWARDS.c.id == reward_id, REWARDS.c.status.in_(only_if))
        if holder is not None:
            stmt = stmt.where(REWARDS.c.claimed_by == holder)
        result = self.conn.execute(stmt.values(**values))
        return bool(result.rowcount)

    def claim_push(
        self, now: datetime, max_attempts: int, holder: str, until: datetime
    ) -> RewardRow | None:
        """Claim the first reward a push may try now for ``holder`` until ``until``; None when
        none is due.

        Due: pending, attempts left, next attempt not in the future, and no live claim by
        anyone (a lapsed claim is a holder that died mid-push). One statement, the due test
        repeated outside the subquery: PostgreSQL re-checks it on the newest row version
        (another process's claim committed meanwhile makes the row not due), and
        ``SKIP LOCKED`` passes over a row another process is claiming; on SQLite the
        statement runs under the database's single write lock.
        """
        r = REWARDS.c
        due = sa.and_(
            r.status == "pending",
            r.attempts < max_attempts,
            sa.or_(r.next_attempt_at.is_(None), r.next_attempt_at <= utc(now)),
            sa.or_(r.claimed_until.is_(None), r.claimed_until <= utc(now)),
        )
        first = (
            sa.select(r.id)
            .where(due)
            .order_by(r.reached_at, r.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = self.conn.execute(
            sa.update(REWARDS)
            .where(r.id == first, due)
            .values(claimed_by=holder, claimed_until=utc(until))
            .returning(*REWARDS.c)
        ).first()
        return None if row is None else _reward(row)

    def delete_reward(self, reward_id: int) -> None:
        """Remove an unpaid, undecided reward (a recount took its tier away)."""
        self.conn.execute(sa.delete(REWARDS).where(REWARDS.c.id == reward_id))

    def reward(self, reward_id: int) -> RewardRow | None:
        """One reward by id."""
        row = self.conn.execute(sa.select(REWARDS).where(REWARDS.c.id == reward_id)).first()
        return None if row is None else _reward(row)

    def add_history(
        self,
        reward: RewardRow | tuple[int, str, int],
        from_status: str | None,
        to_status: str,
        at: datetime,
        by: str = "system",
        note: str = "",
    ) -> None:
        """Record one status change of a reward."""
        rid, referrer, tier = (
            (reward.id, reward.referrer_id, reward.tier)
            if isinstance(reward, RewardRow)
            else reward
        )
        self.driver.execute(
            "history",
            {
                "reward_id": rid,
                "referrer_id": referrer,
                "tier": tier,
                "from_status": from_status,
                "to_status": to_status,
                "at": utc(at),
                "by": by[:100],
                "note": note,
            },
        )


class ReferralQueries:
    """Read-only questions for commands, reports and chat handlers (each its own connection)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def counted(self, referrer_id: str) -> int:
        """How many friends count for the referrer."""
        e = EVENTS.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        e.referrer_id == referrer_id, e.wins.is_(True), e.outcome == "counted"
                    )
                ).scalar_one()
            )

    def window_opened(self, referrer_id: str) -> datetime | None:
        """When the referrer's first friend counted (their window opened)."""
        e = EVENTS.c
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.min(e.occurred_at)).where(
                    e.referrer_id == referrer_id, e.outcome == "counted"
                )
            ).scalar_one_or_none()

    def leaderboard(self, limit: int) -> list[tuple[str, int]]:
        """(referrer, friends counted), most first; ties go to whoever got there first."""
        e = EVENTS.c
        n = sa.func.count().label("n")
        last = sa.func.max(e.occurred_at)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.referrer_id, n)
                .where(e.outcome == "counted")
                .group_by(e.referrer_id)
                .order_by(n.desc(), last.asc(), e.referrer_id)
                .limit(limit)
            )
            return [(r[0], int(r[1])) for r in rows]

    def rewards(
        self,
        *,
        referrer_id: str | None = None,
        statuses: Sequence[str] | None = None,
        reached_from: datetime | None = None,
        reached_to: datetime | None = None,
        due_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[RewardRow]:
        """Rewards matching every filter given, oldest first."""
        r = REWARDS.c
        stmt = sa.select(REWARDS).order_by(r.reached_at, r.id)
        if referrer_id is not None:
            stmt = stmt.where(r.referrer_id == referrer_id)
        if statuses is not None:
            stmt = stmt.where(r.status.in_(statuses))
        if reached_from is not None:
            stmt = stmt.where(r.reached_at >= utc(reached_from))
        if reached_to is not None:
            stmt = stmt.where(r.reached_at < utc(reached_to))
        if due_before is not None:
            stmt = stmt.where(r.next_attempt_at.is_not(None), r.next_attempt_at <= utc(due_before))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [_reward(row) for row in conn.execute(stmt)]

    def next_push_at(self, max_attempts: int, now: datetime) -> datetime | None:
        """When a push is next due: ``now`` when a pending reward was never tried and nobody
        holds it, else the earliest retry time or claim expiry; None when no pending reward
        has attempts left."""
        r = REWARDS.c
        open_ = sa.and_(r.status == "pending", r.attempts < max_attempts)
        free = sa.or_(r.claimed_until.is_(None), r.claimed_until <= utc(now))
        with self.engine.connect() as conn:
            fresh = conn.execute(
                sa.select(r.id).where(open_, free, r.next_attempt_at.is_(None)).limit(1)
            ).first()
            if fresh is not None:
                return now
            # A claimed reward is due again when its claim lapses (its holder died mid-push;
            # a live holder clears the claim when the push ends).
            retry = conn.execute(
                sa.select(sa.func.min(r.next_attempt_at)).where(open_, free)
            ).scalar_one_or_none()
            lapse = conn.execute(
                sa.select(sa.func.min(r.claimed_until)).where(open_, sa.not_(free))
            ).scalar_one_or_none()
        times = [t for t in (retry, lapse) if t is not None]
        return min(times) if times else None

    def history(self, reward_id: int) -> list[dict[str, Any]]:
        """A reward's status changes, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(HISTORY).where(HISTORY.c.reward_id == reward_id).order_by(HISTORY.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def events(self) -> list[dict[str, Any]]:
        """Every event with its outcome (tests and audits; ordered by event_id)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(EVENTS).order_by(EVENTS.c.event_id))
            return [dict(row._mapping) for row in rows]
