"""Live member counts in memory stay equal to the database through any joins and leaves."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.entry.seats import MemberCounts
from bot.events import MemberJoined, MemberLeft, Person
from db.repositories import GroupRepo
from scheduler.clock import SHANGHAI
from tests.support import ROOT, BotRig, bot_settings, make_rig

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
GROUPS = ["sz-nanshan-kjy", "sz-baoan-xx", "sz-futian-cbd", "not-a-welfare-group"]
PEOPLE = ["u1", "u2", "u3", "u4"]


@cache
def _rig() -> BotRig:
    """One bot for every example: the invariant must hold from whatever state came before."""
    folder = Path(tempfile.mkdtemp(prefix="qunfu-counts-"))
    return make_rig(bot_settings(ROOT, database={"url": f"sqlite:///{folder}/q.db"}), T0)


events = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave"]),
        st.sampled_from(GROUPS),
        st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(steps=events)
def test_joins_and_leaves_keep_the_counts_equal_to_the_database(steps) -> None:  # noqa: ANN001
    r = _rig()
    stored = GroupRepo(r.bot.engine)
    at = T0
    for kind, group, people in steps:
        at += timedelta(seconds=1)
        # Repeated joins, leaves of people never seen (seeded from the directory) and rooms
        # that are no welfare group all come up: the database's rules decide, memory follows.
        if kind == "join":
            joined = MemberJoined(at, group, tuple(Person(p, p) for p in people))
            asyncio.run(r.bot.handle(joined))
        else:
            asyncio.run(r.bot.handle(MemberLeft(at, group, tuple(people))))
        assert dict(r.bot.member_counts.member_counts()) == stored.member_counts()


class _Store:
    """A store whose single-group read can be held back, to race a refresh against another."""

    def __init__(self) -> None:
        self.counts = {"a": 1, "b": 2}

    def member_counts(self) -> dict[str, int]:
        return dict(self.counts)

    def member_count(self, group_id: str) -> int | None:
        return self.counts.get(group_id)


def test_a_group_new_to_the_store_is_added_without_resizing_what_readers_hold() -> None:
    store = _Store()
    counts = MemberCounts(store)
    held = counts.member_counts()
    store.counts["c"] = 7
    counts.refresh(["c", "missing"])
    assert dict(held) == {"a": 1, "b": 2}  # a reader iterating `held` is never disturbed
    assert dict(counts.member_counts()) == {"a": 1, "b": 2, "c": 7}
    assert counts.get("missing", 3) == 3


def test_refreshes_from_many_threads_end_at_the_stored_value() -> None:
    store = _Store()
    counts = MemberCounts(store)

    def bump(n: int) -> None:
        for _ in range(n):
            store.counts["a"] += 1  # a join committed…
            counts.refresh(["a"])  # …then mirrored

    threads = [threading.Thread(target=bump, args=(200,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts.get("a", 0) == store.counts["a"]
