"""Driver statements read and write exactly what SQLAlchemy Core does (SQLite and PostgreSQL):
aware UTC datetimes, booleans, NULLs, RETURNING, executemany, and the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from db.driver_statements import DriverCursor, DriverStatement, DriverStatements
from db.referral_repositories import EVENTS
from db.session import make_engine

E = EVENTS.c
KEYS = ("event_id", "type", "referral_code", "referrer_id", "applicant", "referrer_applicant",
        "occurred_at", "received_at", "source", "wins", "outcome")  # fmt: skip
BEIJING = timezone(timedelta(hours=8))


def statements(engine: Engine) -> DriverStatements:
    ins = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    return DriverStatements(
        {
            "insert": (
                ins(EVENTS).on_conflict_do_nothing(index_elements=["event_id"]).returning(E.id),
                KEYS,
            ),
            "read": (
                sa.select(E.event_id, E.occurred_at, E.wins, E.referrer_applicant)
                .where(E.applicant == sa.bindparam("applicant"))
                .order_by(E.occurred_at),
                None,
            ),
            "outcome": (
                sa.update(EVENTS)
                .where(E.id == sa.bindparam("_id"))
                .values(outcome=sa.bindparam("_outcome")),
                None,
            ),
        }
    )


def row(n: int, at: datetime, wins: bool, referrer_applicant: str | None) -> dict[str, object]:
    return {
        "event_id": f"ev-{n}",
        "type": "application_approved",
        "referral_code": "AAAAAAAA-BBBBBBBB",
        "referrer_id": "m1",
        "applicant": "friend",
        "referrer_applicant": referrer_applicant,
        "occurred_at": at,
        "received_at": at,
        "source": "webhook",
        "wins": wins,
        "outcome": "",
    }


def test_driver_rows_match_core_rows(engine: Engine) -> None:
    stmts = statements(engine)
    # An aware non-UTC time with microseconds, and one in UTC: both stored as the same instant.
    first = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=BEIJING)
    second = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with engine.begin() as conn:
        cursor = DriverCursor(conn, stmts)
        ids = [cursor.execute("insert", row(1, first, True, None))[0][0]]
        ids.append(cursor.execute("insert", row(2, second, False, "friend"))[0][0])
        assert cursor.execute("insert", row(1, first, True, None)) == []  # conflict: no row
        cursor.execute_many(
            "outcome", [{"_id": ids[0], "_outcome": "counted"}, {"_id": ids[1], "_outcome": "x"}]
        )
        driver_rows = cursor.execute("read", {"applicant": "friend"})
        cursor.close()
    with engine.connect() as conn:
        core = conn.execute(
            sa.select(E.event_id, E.occurred_at, E.wins, E.referrer_applicant)
            .where(E.applicant == "friend")
            .order_by(E.occurred_at)
        ).all()
        outcomes = dict(conn.execute(sa.select(E.event_id, E.outcome)).all())
    assert driver_rows == [tuple(r) for r in core]
    assert driver_rows == [
        ("ev-1", first.astimezone(UTC), True, None),  # 01:30 UTC
        ("ev-2", second, False, "friend"),
    ]
    assert all(r[1].tzinfo is not None for r in driver_rows)
    assert outcomes == {"ev-1": "counted", "ev-2": "x"}


def test_driver_statements_roll_back_with_the_callers_transaction(engine: Engine) -> None:
    stmts = statements(engine)
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        DriverCursor(conn, stmts).execute("insert", row(1, at, True, None))
        raise RuntimeError("the transaction fails after the insert")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one() == 0


def test_a_naive_datetime_is_refused_as_core_refuses_it(engine: Engine) -> None:
    stmts = statements(engine)
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        DriverCursor(conn, stmts).execute("insert", row(1, datetime(2026, 12, 1), True, None))


def test_expanding_parameters_are_refused_when_compiled() -> None:
    engine = make_engine("sqlite://")
    with pytest.raises(ValueError, match="expanding"):
        DriverStatement(sa.select(E.id).where(E.id.in_(sa.bindparam("ids", expanding=True))),
                        engine.dialect)  # fmt: skip
