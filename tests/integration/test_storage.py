"""Storage on SQLite and PostgreSQL: migrations, memberships, group sync, occurrences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from bot.events import Person
from bot.opsdata.models import Location, WelfareGroup
from db.models import TABLES
from db.repositories import (
    CheckpointRepo,
    GroupRepo,
    MembershipRepo,
    OccurrenceRepo,
    PersonRepo,
    UnknownGroup,
)
from db.session import current_revision, make_engine, session_factory, upgrade
from scheduler.clock import SHANGHAI

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


def group(gid: str = "sz-nanshan-kjy", **changes: object) -> WelfareGroup:
    fields: dict[str, object] = {
        "id": gid,
        "name": "深圳南山科技园福利1群",
        "city": "深圳",
        "district": "南山区",
        "location": Location(lat=22.5405, lon=113.9345),
        "capacity": 500,
        "members": 120,
        "tags": ["office"],
        "manager": "cm-li",
    }
    return WelfareGroup(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s, s.begin():
        GroupRepo(s).sync([group(), group("sz-futian-cbd", members=0)], T0)
    with session_factory(engine)() as s:
        yield s


def test_migrations_create_every_table_and_rerun_is_a_no_op(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
        assert current_revision(engine) == _head()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        ours = [d for d in diff if _table_of(d) in TABLES]
        assert ours == [], "models and migrations disagree"
    finally:
        engine.dispose()


def _table_of(diff: object) -> str | None:
    """The table an Alembic autogenerate diff entry is about."""
    op = diff[0] if isinstance(diff, list) else diff
    assert isinstance(op, tuple)
    for part in op[1:]:
        if isinstance(part, sa.Table):
            return str(part.name)
        table = getattr(part, "table", None)
        if isinstance(table, sa.Table):
            return str(table.name)
    # column-level entries: (kind, schema, table name, ...)
    return op[2] if len(op) > 2 and isinstance(op[2], str) else None


def test_timestamps_come_back_aware_utc(session: Session) -> None:
    CheckpointRepo(session).set("scheduler", T0)
    session.commit()
    session.expunge_all()
    value = CheckpointRepo(session).get("scheduler")
    assert value == T0 and value is not None and value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


def test_join_leave_and_rejoin_keep_history_and_count(session: Session) -> None:
    members = MembershipRepo(session)
    zhang = Person("u1", "张三")
    members.join("sz-nanshan-kjy", zhang, T0, inviter_id="u9", channel="poster")
    members.join("sz-nanshan-kjy", zhang, T0 + timedelta(seconds=1))  # repeated event
    assert GroupRepo(session).member_counts()["sz-nanshan-kjy"] == 121

    assert members.leave("sz-nanshan-kjy", "u1", T0 + timedelta(hours=1))
    assert not members.leave("sz-nanshan-kjy", "u1", T0 + timedelta(hours=1))  # repeated
    members.join("sz-nanshan-kjy", Person("u1", "张三丰"), T0 + timedelta(days=2))
    session.commit()

    history = members.history("sz-nanshan-kjy", "u1")
    assert [(h.joined_at, h.left_at) for h in history] == [
        (T0, T0 + timedelta(hours=1)),
        (T0 + timedelta(days=2), None),
    ]
    assert history[0].inviter_id == "u9" and history[0].channel == "poster"
    assert GroupRepo(session).member_counts()["sz-nanshan-kjy"] == 121
    assert [n.person for n in members.unwelcomed("sz-nanshan-kjy")] == [Person("u1", "张三丰")]


def test_leave_of_seeded_member_lowers_count_but_never_below_zero(session: Session) -> None:
    members = MembershipRepo(session)
    members.leave("sz-nanshan-kjy", "never-seen", T0)
    members.leave("sz-futian-cbd", "never-seen", T0)
    members.leave("sz-nanshan-kjy", "never-seen", T0 + timedelta(seconds=5))  # repeated event
    assert GroupRepo(session).member_counts() == {"sz-nanshan-kjy": 119, "sz-futian-cbd": 0}
    # The leave is on record (a closed stay), so nothing takes them for a member any more.
    history = members.history("sz-nanshan-kjy", "never-seen")
    assert [(h.joined_at, h.left_at) for h in history] == [(T0, T0)]
    assert members.unwelcomed("sz-nanshan-kjy") == []


def test_join_of_unknown_group_is_refused(session: Session) -> None:
    with pytest.raises(UnknownGroup):
        MembershipRepo(session).join("nowhere", Person("u1"), T0)


def test_unwelcomed_in_join_order_and_marked_welcomed(session: Session) -> None:
    members = MembershipRepo(session)
    for i, gid in enumerate(["sz-futian-cbd", "sz-nanshan-kjy", "sz-nanshan-kjy"]):
        members.join(gid, Person(f"u{i}", f"name{i}"), T0 + timedelta(seconds=10 - i))
    session.commit()
    newcomers = members.unwelcomed("sz-nanshan-kjy")
    assert [n.person.id for n in newcomers] == ["u2", "u1"]
    assert members.pending_welcome_groups() == [
        ("sz-nanshan-kjy", T0 + timedelta(seconds=8)),
        ("sz-futian-cbd", T0 + timedelta(seconds=10)),
    ]

    ids = [n.id for n in newcomers]
    assert members.mark_welcomed(ids, T0 + timedelta(minutes=1)) == 2
    assert members.mark_welcomed(ids, T0) == 0
    session.commit()
    assert members.unwelcomed("sz-nanshan-kjy") == []
    assert [g for g, _ in members.pending_welcome_groups()] == ["sz-futian-cbd"]


def test_group_sync_updates_directory_fields_but_keeps_live_count(session: Session) -> None:
    MembershipRepo(session).join("sz-nanshan-kjy", Person("u1"), T0)
    later = T0 + timedelta(days=1)
    moved = group(
        name="南山科技园1群",
        location=Location(lat=22.55, lon=113.95),
        capacity=400,
        members=5,
        tags=["office", "mall"],
        manager="cm-wang",
    )
    added, updated = GroupRepo(session).sync([moved, group("sz-luohu", members=7)], later)
    session.commit()
    assert (added, updated) == (1, 1)
    row = GroupRepo(session).get("sz-nanshan-kjy")
    assert row is not None
    assert (row.name, row.lat, row.capacity, row.tags, row.manager) == (
        "南山科技园1群",
        22.55,
        400,
        ["office", "mall"],
        "cm-wang",
    )
    assert row.updated_at == later
    assert GroupRepo(session).member_counts() == {
        "sz-nanshan-kjy": 121,
        "sz-futian-cbd": 0,
        "sz-luohu": 7,
    }
    assert GroupRepo(session).sync([moved], later + timedelta(days=1)) == (0, 0)


def test_occurrence_is_recorded_once(session: Session) -> None:
    occurrences = OccurrenceRepo(session)
    fire = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
    assert occurrences.record("lunch-deals", fire, "enqueued", "")
    assert not occurrences.record("lunch-deals", fire.astimezone(SHANGHAI), "missed", "late")
    assert occurrences.record("lunch-deals", fire + timedelta(days=1), "skipped", "holiday")
    session.commit()
    got = occurrences.get("lunch-deals", fire)
    assert got is not None and (got.status, got.recorded_at) == ("enqueued", fire)


def test_checkpoint_get_and_set(session: Session) -> None:
    checkpoints = CheckpointRepo(session)
    assert checkpoints.get("scheduler") is None
    checkpoints.set("scheduler", T0)
    checkpoints.set("scheduler", T0 + timedelta(hours=1))
    session.commit()
    assert checkpoints.get("scheduler") == T0 + timedelta(hours=1)


def test_opt_out_is_remembered(session: Session) -> None:
    people = PersonRepo(session)
    MembershipRepo(session).join("sz-nanshan-kjy", Person("u1"), T0)
    people.set_opted_out("u1", True, T0)
    people.set_opted_out("u2", True, T0)
    session.commit()
    assert people.opted_out() == {"u1", "u2"}


def test_foreign_keys_are_enforced(session: Session) -> None:
    from db.models import Membership

    session.add(Membership(group_id="nowhere", person_id="nobody", joined_at=T0))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_repositories_on_an_engine_commit_each_call(engine: Engine) -> None:
    groups, members = GroupRepo(engine), MembershipRepo(engine)
    assert groups.sync([group()]) == (1, 0)  # no `at`: stamped with the wall clock
    members.join("sz-nanshan-kjy", Person("u1", "张三"), T0)
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        assert GroupRepo(other).member_counts() == {"sz-nanshan-kjy": 121}
        [newcomer] = MembershipRepo(other).unwelcomed("sz-nanshan-kjy")
        assert (newcomer.person_id, newcomer.person_name) == ("u1", "张三")
        assert MembershipRepo(other).mark_welcomed([newcomer.id], T0) == 1
        assert members.unwelcomed("sz-nanshan-kjy") == []
    finally:
        other.dispose()


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    from db.session import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
