"""Repositories: the domain's questions and changes, phrased over the tables in db.models.

A repository takes a :class:`~sqlmodel.Session` or an :class:`~sqlalchemy.Engine`. Given a
session it never commits: the caller owns the unit of work (``with factory() as s, s.begin():
MembershipRepo(s).join(...)``). Given an engine, every method is its own committed transaction.
Datetimes in and out are aware; values read back are UTC (convert to Asia/Shanghai where a
person sees them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from bot.events import Person
from bot.opsdata.models import WelfareGroup
from db.models import (
    UNFINISHED_OCCURRENCE,
    Checkpoint,
    Membership,
    PersonRow,
    ScheduleOccurrence,
    WelfareGroupRow,
)

OccurrenceStatus = Literal["enqueued", "missed", "skipped"]
# Rows per fetch when a large table is read as a stream (memberships: a million at bank scale).
STREAM_BATCH = 2000


class UnknownGroup(LookupError):
    """A membership event named a group that is not in the groups directory."""


def utc(dt: datetime) -> datetime:
    """``dt`` as aware UTC; a naive value is rejected (the domain only has aware datetimes)."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: pass an aware datetime")
    return dt.astimezone(UTC)


def insert_ignore(
    session: Session, model: type[SQLModel], values: dict[str, Any], conflict: Sequence[str]
) -> bool:
    """INSERT a row unless one with the same ``conflict`` columns exists; True when inserted.

    One atomic statement (``ON CONFLICT DO NOTHING``) on both SQLite and PostgreSQL, so two
    writers racing on the same key cannot both win.
    """
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values)
    else:  # pragma: no cover - only the two supported backends reach here
        raise NotImplementedError(f"insert_ignore on {dialect}")
    # RETURNING, not rowcount: psycopg reports -1 for a statement run through the ORM session.
    stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    stmt = stmt.returning(*table.primary_key.columns)
    return session.execute(stmt).first() is not None


def insert_ignore_many(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    conflict: str,
    *,
    chunk: int = 500,
) -> set[Any]:
    """Multi-row :func:`insert_ignore`: returns the ``conflict`` values that were inserted.

    Rows go in chunks of multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``, one round trip
    per chunk instead of per row (fan-out to thousands of groups).
    """
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted: set[Any] = set()
    column = table.c[conflict]
    # A multi-row VALUES needs the same columns in every row; rows of another shape (a say has
    # text, an invite has none) go in their own statements, in their original order.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    stmt = insert(table).on_conflict_do_nothing(index_elements=[conflict]).returning(column)
    for same in shapes.values():
        for start in range(0, len(same), chunk):
            # executemany with RETURNING: SQLAlchemy batches it as "insertmanyvalues".
            result = session.execute(stmt, same[start : start + chunk])
            inserted.update(r[0] for r in result)
    return inserted


def insert_ignore_rows(
    session: Session,
    model: type[SQLModel],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict: str,
) -> int:
    """Insert plain tuples (``columns`` in order), skipping rows whose ``conflict`` value exists.

    A prepared ``INSERT … ON CONFLICT DO NOTHING`` with no ``RETURNING``, at the driver level
    (an ``executemany``; on SQLite, statements of many rows each): no ORM objects, no per-row
    dicts, only the columns' own bind conversions (aware datetimes, JSON). Returns how many rows
    were inserted (the driver's row count). For a fan-out of 20,000 sends, where
    :func:`insert_ignore_many` spends its time building and reading back what this skips.
    """
    if not rows:
        return 0
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect
    sql, processors, types = _insert_ignore_sql(table, tuple(columns), conflict, dialect)
    # Converters remember their answers, one memory per column type: a fan-out's rows share
    # their created_at, and a send's next_attempt_at is its not_before.
    memory: dict[type, dict[Any, Any]] = {}
    convert: list[tuple[int, Any, dict[Any, Any]]] = [
        (i, p, memory.setdefault(type(t), {}))
        for i, (p, t) in enumerate(zip(processors, types, strict=True))
        if p is not None
    ]
    if convert:
        prepared = []
        for row in rows:
            values = list(row)
            for i, process, seen in convert:
                value = values[i]
                try:
                    values[i] = seen[value]
                except KeyError:
                    values[i] = seen[value] = process(value)
                except TypeError:  # unhashable (a JSON list)
                    values[i] = process(value)
            prepared.append(tuple(values))
    else:
        prepared = list(rows)
    connection = session.connection()
    if dialect.name != "sqlite":
        result = connection.exec_driver_sql(sql, prepared)
        return max(int(result.rowcount), 0)
    # SQLite: many rows per statement (``VALUES (…), (…), …``). One statement step per row
    # is most of what an executemany costs there; the rows' values are bound all the same.
    per = max(1, _SQLITE_MAX_BINDS // len(columns))
    added = 0
    for start in range(0, len(prepared), per):
        part = prepared[start : start + per]
        text = _sqlite_multi_values(sql, len(columns), len(part))
        flat = [value for row in part for value in row]
        added += max(int(connection.exec_driver_sql(text, tuple(flat)).rowcount), 0)
    return added


# Bound values per SQLite statement: the limit of SQLite builds before 3.32 (32,766 since).
_SQLITE_MAX_BINDS = 999


@functools.lru_cache(maxsize=64)
def _sqlite_multi_values(sql: str, n_columns: int, n_rows: int) -> str:
    """``sql`` (one row of ``?`` in ``VALUES (…)``) for ``n_rows`` rows."""
    one = "(" + ", ".join("?" for _ in range(n_columns)) + ")"
    return sql.replace(one, ", ".join([one] * n_rows), 1)


_INSERT_SQL: dict[tuple[Any, ...], tuple[str, list[Any], list[Any]]] = {}


def _insert_ignore_sql(
    table: sa.Table, columns: tuple[str, ...], conflict: str, dialect: Any
) -> tuple[str, list[Any], list[Any]]:
    """The statement text in the driver's placeholder style, each column's bind converter and
    type (the dialect's)."""
    key = (table.name, columns, conflict, dialect.name, dialect.paramstyle)
    if key not in _INSERT_SQL:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({quote(conflict)}) DO NOTHING"
        )
        # dialect_impl: the dialect's own type (SQLite spells datetimes its way).
        types = [table.c[c].type.dialect_impl(dialect) for c in columns]
        processors = [t.bind_processor(dialect) for t in types]
        _INSERT_SQL[key] = (sql, processors, types)
    return _INSERT_SQL[key]


@dataclass(frozen=True)
class Newcomer:
    """An open membership not yet welcomed (``id`` is the membership's), with the person's name."""

    id: int
    group_id: str
    person_id: str
    person_name: str
    joined_at: datetime
    inviter_id: str | None
    channel: str | None

    @property
    def person(self) -> Person:
        return Person(self.person_id, self.person_name)


class _Repo:
    def __init__(self, db: Session | Engine) -> None:
        self._db = db

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if isinstance(self._db, Session):
            yield self._db
            return
        with Session(self._db, expire_on_commit=False) as s, s.begin():
            yield s


# The directory's fields a sync copies onto a group's row (the member count only seeds it).
_GROUP_FIELDS = ("name", "city", "district", "lat", "lon", "crs", "capacity", "tags", "manager")


def _group_fields(g: WelfareGroup) -> dict[str, Any]:
    """A group's row values from the directory, in :data:`_GROUP_FIELDS` order."""
    return {
        "name": g.name,
        "city": g.city,
        "district": g.district,
        "lat": g.location.lat,
        "lon": g.location.lon,
        "crs": g.location.crs,
        "capacity": g.capacity,
        "tags": list(g.tags),
        "manager": g.manager,
    }


class GroupRepo(_Repo):
    """Welfare groups as synced from the groups directory, with live member counts."""

    def sync(self, groups: Iterable[WelfareGroup], at: datetime | None = None) -> tuple[int, int]:
        """Insert new groups and refresh known ones; returns (added, updated).

        The directory's ``members`` only seeds a new row: afterwards the count follows join and
        leave events. Groups missing from the directory are kept (their history matters).
        ``at`` stamps ``updated_at``; without it the wall clock is used (bookkeeping only).
        """
        stamp = utc(at) if at is not None else datetime.now(UTC)
        table = WelfareGroupRow.__table__  # type: ignore[attr-defined]
        # Plain rows in, two executemany statements out: 20,000 groups are no 20,000 ORM objects.
        with self._session() as s:
            if s.get_bind().dialect.name == "postgresql":
                # Workers starting together sync the same directory: one at a time, or two
                # inserts of one new group collide (key: an arbitrary constant of ours).
                s.execute(sa.text("SELECT pg_advisory_xact_lock(7004152)"))
            known = {
                row[0]: tuple(row[1:])
                for row in s.execute(sa.select(table.c.id, *(table.c[k] for k in _GROUP_FIELDS)))
            }
            new: dict[str, dict[str, Any]] = {}
            changed: dict[str, dict[str, Any]] = {}
            for g in groups:
                fields = _group_fields(g)
                if g.id in new:  # listed twice: the last one wins, as it would live
                    new[g.id].update(fields)
                elif g.id not in known:
                    new[g.id] = {"id": g.id, "member_count": g.members, "updated_at": stamp}
                    new[g.id].update(fields)
                elif known[g.id] != tuple(fields.values()):
                    changed[g.id] = {"_id": g.id, "updated_at": stamp, **fields}
            if new:
                s.execute(sa.insert(table), list(new.values()))
            if changed:
                keys = (*_GROUP_FIELDS, "updated_at")
                values: dict[str, Any] = {k: sa.bindparam(k) for k in keys}
                stmt = sa.update(table).where(table.c.id == sa.bindparam("_id")).values(values)
                s.execute(stmt, list(changed.values()))
        return len(new), len(changed)

    def get(self, group_id: str) -> WelfareGroupRow | None:
        with self._session() as s:
            return s.get(WelfareGroupRow, group_id)

    def member_counts(self) -> dict[str, int]:
        """Current member count of every known group (plain rows: one per group)."""
        with self._session() as s:
            return dict(s.exec(select(WelfareGroupRow.id, WelfareGroupRow.member_count)).all())

    def member_count(self, group_id: str) -> int | None:
        """Current member count of one group; None for a group not synced."""
        stmt = select(WelfareGroupRow.member_count).where(WelfareGroupRow.id == group_id)
        with self._session() as s:
            return s.exec(stmt).first()


class MembershipRepo(_Repo):
    """Join and leave history; a rejoin opens a new membership row."""

    def join(
        self,
        group_id: str,
        person: Person,
        at: datetime,
        inviter_id: str | None = None,
        channel: str | None = None,
    ) -> Membership:
        """Record that ``person`` joined; returns the open membership.

        A repeated join event for someone already in the group returns the open membership
        unchanged (no double count). Raises :class:`UnknownGroup` for a group not synced.
        """
        at = utc(at)
        with self._session() as s:
            group = s.get(WelfareGroupRow, group_id, with_for_update=True)
            if group is None:
                raise UnknownGroup(group_id)
            row = s.get(PersonRow, person.id)
            if row is None:
                s.add(PersonRow(id=person.id, name=person.name, first_seen=at))
            elif person.name and row.name != person.name:
                row.name = person.name
            open_ = _open_membership(s, group_id, person.id)
            if open_ is not None:
                return open_
            membership = Membership(
                group_id=group_id,
                person_id=person.id,
                joined_at=at,
                inviter_id=inviter_id,
                channel=channel,
            )
            s.add(membership)
            group.member_count += 1
            s.flush()
            return membership

    def leave(self, group_id: str, person_id: str, at: datetime) -> bool:
        """Close the open membership; True if there was one.

        Someone we never saw join (a member seeded from the directory's count) gets a closed
        stay, joined and left at ``at``: the ledger then knows they left (a manager's answer
        goes to them privately) and a repeated leave is not counted twice. The member count
        drops (never below 0) once per stay.
        """
        at = utc(at)
        with self._session() as s:
            group = s.get(WelfareGroupRow, group_id, with_for_update=True)
            if group is None:
                raise UnknownGroup(group_id)
            open_ = _open_membership(s, group_id, person_id)
            if open_ is not None:
                open_.left_at = at
            elif s.exec(
                select(Membership.id).where(
                    Membership.group_id == group_id, Membership.person_id == person_id
                )
            ).first():
                return False
            else:  # never seen joining (seeded from the directory): a closed stay records it
                if s.get(PersonRow, person_id) is None:
                    s.add(PersonRow(id=person_id, first_seen=at))
                    s.flush()
                s.add(
                    Membership(
                        group_id=group_id,
                        person_id=person_id,
                        joined_at=at,
                        left_at=at,
                        welcomed_at=at,
                    )
                )
            group.member_count = max(0, group.member_count - 1)
            s.flush()
            return open_ is not None

    def history(self, group_id: str, person_id: str) -> list[Membership]:
        """Every stay of ``person_id`` in ``group_id``, oldest first."""
        stmt = (
            select(Membership)
            .where(Membership.group_id == group_id, Membership.person_id == person_id)
            .order_by(col(Membership.joined_at), col(Membership.id))
        )
        with self._session() as s:
            return list(s.exec(stmt))

    def unwelcomed(self, group_id: str) -> list[Newcomer]:
        """Members still in the group who have not been welcomed, in join order."""
        return self._open(
            Membership.group_id == group_id, col(Membership.welcomed_at).is_(None)
        )

    def current(self) -> list[Newcomer]:
        """Every open membership (people in groups now), by group, in join order.

        A list of them all: for small worlds and tests. Anything that may meet a bank's million
        memberships reads :meth:`stream_current` or :meth:`members_of` instead.
        """
        return self._open()

    def count_current(self) -> int:
        """How many memberships are open (one count over the open-membership index)."""
        stmt = sa.select(sa.func.count()).where(col(Membership.left_at).is_(None))
        with self._session() as s:
            return int(s.execute(stmt).scalar_one())

    def stream_current(self, batch: int = STREAM_BATCH) -> Iterator[tuple[str, str, str]]:
        """Every open membership as plain ``(group_id, person_id, person_name)`` rows, fetched
        ``batch`` at a time (``yield_per``): no ORM object and never the whole table in memory.

        The read holds one transaction (one consistent snapshot) until the iterator is used up
        or closed; use it from one thread.
        """
        stmt = (
            sa.select(col(Membership.group_id), col(Membership.person_id), col(PersonRow.name))
            .join(PersonRow, col(PersonRow.id) == col(Membership.person_id))
            .where(col(Membership.left_at).is_(None))
            .order_by(col(Membership.group_id), col(Membership.joined_at), col(Membership.id))
            .execution_options(yield_per=batch)
        )
        with self._session() as s:
            for partition in s.execute(stmt).partitions():
                yield from partition

    def members_of(self, group_id: str) -> list[Person]:
        """The people in one group now, in join order (plain rows over the group's index)."""
        stmt = (
            sa.select(col(Membership.person_id), col(PersonRow.name))
            .join(PersonRow, col(PersonRow.id) == col(Membership.person_id))
            .where(col(Membership.group_id) == group_id, col(Membership.left_at).is_(None))
            .order_by(col(Membership.joined_at), col(Membership.id))
        )
        with self._session() as s:
            return [Person(pid, name) for pid, name in s.execute(stmt)]

    def current_person(self, person_id: str) -> Person | None:
        """The person with this id if they are in some group now; None otherwise."""
        stmt = (
            sa.select(col(PersonRow.id), col(PersonRow.name))
            .where(
                col(PersonRow.id) == person_id,
                sa.exists().where(
                    col(Membership.person_id) == person_id, col(Membership.left_at).is_(None)
                ),
            )
        )
        with self._session() as s:
            row = s.execute(stmt).first()
        return Person(row[0], row[1]) if row is not None else None

    def _open(self, *where: Any) -> list[Newcomer]:
        # Plain columns, not ORM entities: a batch may be large after a restart.
        stmt = (
            sa.select(
                col(Membership.id),
                col(Membership.group_id),
                col(Membership.person_id),
                col(PersonRow.name),
                col(Membership.joined_at),
                col(Membership.inviter_id),
                col(Membership.channel),
            )
            .join(PersonRow, col(PersonRow.id) == col(Membership.person_id))
            .where(col(Membership.left_at).is_(None), *where)
            .order_by(col(Membership.group_id), col(Membership.joined_at), col(Membership.id))
        )
        with self._session() as s:
            return [Newcomer(*row) for row in s.execute(stmt)]

    def mark_welcomed(self, membership_ids: Iterable[int], at: datetime) -> int:
        """Stamp memberships as welcomed; returns how many were newly stamped."""
        ids = list(membership_ids)
        if not ids:
            return 0
        with self._session() as s:
            result = s.execute(
                sa.update(Membership)
                .where(col(Membership.id).in_(ids), col(Membership.welcomed_at).is_(None))
                .values(welcomed_at=utc(at))
                .returning(col(Membership.id))
            )
            return len(result.all())

    def pending_welcome_groups(self) -> list[tuple[str, datetime]]:
        """Groups with unwelcomed open memberships and their earliest join, earliest first."""
        first = sa.func.min(Membership.joined_at)
        stmt = (
            select(Membership.group_id, first)
            .where(col(Membership.left_at).is_(None), col(Membership.welcomed_at).is_(None))
            .group_by(col(Membership.group_id))
            .order_by(first, col(Membership.group_id))
        )
        with self._session() as s:
            return [(gid, as_utc(ts)) for gid, ts in s.exec(stmt)]


def _open_membership(s: Session, group_id: str, person_id: str) -> Membership | None:
    stmt = (
        select(Membership)
        .where(
            Membership.group_id == group_id,
            Membership.person_id == person_id,
            col(Membership.left_at).is_(None),
        )
        .order_by(col(Membership.id).desc())
    )
    return s.exec(stmt).first()


class PersonRepo(_Repo):
    """People the bot has seen, and their marketing opt-out."""

    def set_opted_out(self, person_id: str, opted_out: bool, at: datetime) -> None:
        """Record an opt-out (or opt back in); creates the person if unknown."""
        with self._session() as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                s.add(PersonRow(id=person_id, first_seen=utc(at), opted_out=opted_out))
            else:
                row.opted_out = opted_out
            s.flush()

    def opted_out(self) -> set[str]:
        """Ids of everyone who opted out of marketing."""
        with self._session() as s:
            return set(s.exec(select(PersonRow.id).where(col(PersonRow.opted_out))))


def _unfinished_claim(campaign_id: str, fire_at: datetime, holder: str) -> tuple[Any, ...]:
    """The occurrence row ``holder`` claimed for its fan-out and has not finished."""
    return (
        col(ScheduleOccurrence.campaign_id) == campaign_id,
        col(ScheduleOccurrence.fire_at) == utc(fire_at),
        col(ScheduleOccurrence.holder) == holder,
        col(ScheduleOccurrence.fanned_out_at).is_(None),
    )


class OccurrenceRepo(_Repo):
    """What the scheduler did with each (campaign, fire time)."""

    def record(
        self,
        campaign_id: str,
        fire_at: datetime,
        status: OccurrenceStatus,
        reason: str = "",
        recorded_at: datetime | None = None,
    ) -> bool:
        """Record an occurrence once; False when (campaign_id, fire_at) was already recorded.

        ``recorded_at`` defaults to ``fire_at`` (repositories never read a clock).
        """
        fire_at = utc(fire_at)
        values = {
            "campaign_id": campaign_id,
            "fire_at": fire_at,
            "status": status,
            "reason": reason,
            "recorded_at": utc(recorded_at or fire_at),
        }
        with self._session() as s:
            return insert_ignore(s, ScheduleOccurrence, values, ("campaign_id", "fire_at"))

    def claim_fanout(
        self, campaign_id: str, fire_at: datetime, holder: str, now: datetime, until: datetime
    ) -> bool:
        """Take the fan-out of an occurrence for ``holder`` until ``until``; True when taken.

        Atomic across processes: the first claim inserts the (unique) occurrence, ``enqueued``
        with no ``fanned_out_at``; a later one takes it over only while it is unfinished and its
        claim lapsed before ``now`` (its holder died mid-fan-out) or is already ``holder``'s.
        ``now`` and ``until`` are lease time (bot.leases), not the bot's clock.
        """
        fire_at, now, until = utc(fire_at), utc(now), utc(until)
        values = {
            "campaign_id": campaign_id,
            "fire_at": fire_at,
            "status": "enqueued",
            "reason": "fanning out",
            "recorded_at": fire_at,
            "holder": holder,
            "claimed_until": until,
        }
        with self._session() as s:
            if insert_ignore(s, ScheduleOccurrence, values, ("campaign_id", "fire_at")):
                return True
            took = s.execute(
                sa.update(ScheduleOccurrence)
                .where(
                    col(ScheduleOccurrence.campaign_id) == campaign_id,
                    col(ScheduleOccurrence.fire_at) == fire_at,
                    col(ScheduleOccurrence.status) == "enqueued",
                    col(ScheduleOccurrence.fanned_out_at).is_(None),
                    sa.or_(
                        col(ScheduleOccurrence.claimed_until) < now,
                        col(ScheduleOccurrence.holder) == holder,
                    ),
                )
                .values(holder=holder, claimed_until=until)
                .returning(col(ScheduleOccurrence.id))
            ).first()
            return took is not None

    def finish_fanout(
        self, campaign_id: str, fire_at: datetime, holder: str, reason: str, at: datetime
    ) -> bool:
        """Mark ``holder``'s fan-out complete (``fanned_out_at``); False if it lost the claim."""
        with self._session() as s:
            done = s.execute(
                sa.update(ScheduleOccurrence)
                .where(*_unfinished_claim(campaign_id, fire_at, holder))
                .values(reason=reason, fanned_out_at=utc(at), claimed_until=None)
                .returning(col(ScheduleOccurrence.id))
            ).first()
            return done is not None

    def release_fanout(self, campaign_id: str, fire_at: datetime, holder: str) -> bool:
        """Forget ``holder``'s unfinished claim (its fan-out hit a fault and will be tried
        again, by this process or another); True when there was one."""
        with self._session() as s:
            gone = s.execute(
                sa.delete(ScheduleOccurrence)
                .where(*_unfinished_claim(campaign_id, fire_at, holder))
                .returning(col(ScheduleOccurrence.id))
            ).first()
            return gone is not None

    def unfinished(self, lapsed_before: datetime) -> list[tuple[str, datetime]]:
        """Fan-outs not finished whose claim lapsed before ``lapsed_before`` (lease time):
        ``(campaign_id, fire_at)``, oldest first. Read through ``ix_occurrence_unfinished``."""
        stmt = (
            sa.select(col(ScheduleOccurrence.campaign_id), col(ScheduleOccurrence.fire_at))
            .where(
                sa.text(UNFINISHED_OCCURRENCE),
                col(ScheduleOccurrence.claimed_until) < utc(lapsed_before),
            )
            .order_by(col(ScheduleOccurrence.fire_at))
        )
        with self._session() as s:
            return [(cid, as_utc(at)) for cid, at in s.execute(stmt)]

    def get(self, campaign_id: str, fire_at: datetime) -> ScheduleOccurrence | None:
        stmt = select(ScheduleOccurrence).where(
            ScheduleOccurrence.campaign_id == campaign_id,
            ScheduleOccurrence.fire_at == utc(fire_at),
        )
        with self._session() as s:
            return s.exec(stmt).first()


class CheckpointRepo(_Repo):
    """Named instants, e.g. ``scheduler``: how far the scheduler has run."""

    def get(self, name: str) -> datetime | None:
        with self._session() as s:
            row = s.get(Checkpoint, name)
            return row.value if row is not None else None

    def set(self, name: str, value: datetime) -> None:
        with self._session() as s:
            row = s.get(Checkpoint, name)
            if row is None:
                s.add(Checkpoint(name=name, value=utc(value)))
            else:
                row.value = utc(value)
            s.flush()


def as_utc(value: datetime | str) -> datetime:
    """A value read back from the database as aware UTC (aggregates on SQLite may be text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
