"""Live member counts in memory: the one copy routing, the entry API and the private chat read.

The database column ``welfare_group.member_count`` stays the truth (seeded from the groups
directory, moved by every join and leave in the same transaction as the membership row). This
class mirrors it so a routing request reads a dict instead of 20,000 rows: loaded once at start
(one plain ``SELECT id, member_count``, a row per group however many memberships there are),
re-read for the one group a join or leave touched (the dispatcher calls :meth:`refresh`), and
re-loaded whole after the groups directory is synced (new groups come with seeded counts).

Thread-safe: writers (refresh, reload) hold a lock, so re-reads are applied in the order they
were read and a slow re-read can never overwrite a newer one; readers take no lock and get the
current dict, which is only ever changed value by value or replaced whole (never resized under
a reader's feet).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Protocol

from bot.opsdata.models import WelfareGroup


class CountStore(Protocol):
    """Where counts are stored: :class:`db.repositories.GroupRepo` is one."""

    def member_counts(self) -> dict[str, int]: ...

    def member_count(self, group_id: str) -> int | None: ...


class MemberCounts:
    """``group id -> members now``, kept equal to the database by joins and leaves."""

    def __init__(self, store: CountStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.reload()

    def reload(self) -> None:
        """Read every group's count again (at start, and after the directory is synced)."""
        with self._lock:
            self._counts = dict(self._store.member_counts())

    def refresh(self, group_ids: Iterable[str]) -> None:
        """Re-read the groups a join or leave changed; unknown groups are left out."""
        with self._lock:
            counts = self._counts
            for group_id in dict.fromkeys(group_ids):
                value = self._store.member_count(group_id)
                if value is None:
                    continue
                if group_id not in counts:  # a new key: copy, so no reader sees a resize
                    counts = dict(counts)
                counts[group_id] = value
            self._counts = counts

    def member_counts(self) -> Mapping[str, int]:
        """The current counts (read-only: the same object until the next change of size)."""
        return self._counts

    def get(self, group_id: str, default: int) -> int:
        """One group's count, ``default`` for a group the database does not know yet."""
        return self._counts.get(group_id, default)


class _GroupsOfPerson(Protocol):
    def groups_of(self, person_id: str) -> set[str]: ...


def welfare_groups_of(
    seats: _GroupsOfPerson, groups: Mapping[str, WelfareGroup], person_id: str
) -> list[WelfareGroup]:
    """The welfare groups ``person_id`` is in now, in id order (a group gone from the directory
    is left out). Blocking: reads the person's memberships."""
    return [groups[g] for g in sorted(seats.groups_of(person_id)) if g in groups]
