"""Several ``qunfu run`` processes on one database (DESIGN.md core loop 7).

On PostgreSQL any number of processes share the work through rows of the database itself:

* ``worker_lease``: each process's heartbeat, so each knows how many share the accounts;
* ``account_lease``: each account is held by one process until ``expires_at``; the holder renews
  it every third of ``database.lease_ttl`` and another process takes over an expired lease (its
  holder died) on its next heartbeat, so within ``lease_ttl`` plus a heartbeat. A process holds
  about its fair share (accounts / live processes): one with too many lets the extra go (first
  it stops claiming their sends, one heartbeat later it gives up the lease), one with too few
  takes free ones. On taking an account, its rows a dead holder left ``sending`` become
  ``uncertain`` (:meth:`bot.outbox.Outbox.recover`), exactly as a restart does on SQLite.

Lease time is the database server's clock (``now()``), never a process's own: processes on
several machines, or simulators with a scaled clock, agree on it. :class:`LeaseClock` gives
that time to code that compares with it in Python (occurrence fan-out claims).

On SQLite one process runs at a time: :func:`hold_database` takes an exclusive lock on a file
beside the database before anything else is touched, and a second ``qunfu run`` stops with a
plain message naming the holder's process id.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from loguru import logger
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from db.models import AccountLease, WorkerLease

DEFAULT_TTL = timedelta(seconds=25)


def holder_id() -> str:
    """This process's name in lease rows: host, pid and a random tail (pids are reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# -- SQLite: one process ---------------------------------------------------------------------


class DatabaseInUse(RuntimeError):
    """Another ``qunfu run`` holds this SQLite database."""


@dataclass
class DatabaseLock:
    """An exclusive lock on ``<database>.lock``, held until :meth:`release` or process exit
    (the kernel drops it when the process dies, SIGKILL included)."""

    path: Path
    _file: IO[str] | None

    def release(self) -> None:
        """Let the next process start (the file stays; only the lock matters)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def hold_database(url: str) -> DatabaseLock | None:
    """On a SQLite file, take the exclusive run lock or raise :class:`DatabaseInUse`;
    elsewhere (PostgreSQL, ``:memory:``) return None: nothing to hold."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    import fcntl  # POSIX only; imported here so the module loads everywhere

    db = Path(url.removeprefix("sqlite:///"))
    path = db.with_name(db.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    file = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        file.seek(0)
        holder = file.read().strip() or "unknown"
        file.close()
        raise DatabaseInUse(
            f"another `qunfu run` (pid {holder}) is using {db}; SQLite takes one process at a "
            "time. Stop it first, or run several processes on PostgreSQL "
            "(database.url, see docs/deployment.md)."
        ) from None
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()}\n")
    file.flush()
    return DatabaseLock(path, file)


# -- PostgreSQL: leases ----------------------------------------------------------------------


# Heartbeat periods (seconds): the usual one, and the one while a hand-over is under way.
REBALANCE_EVERY_S = 2.0
HANDOVER_EVERY_S = 0.5


class LeaseClock:
    """The database server's time, read in Python: the wall clock plus the server's offset
    (measured by :meth:`sync`; zero on SQLite, where one process runs)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def sync(self, engine: Engine) -> None:
        """Measure the server's offset from this machine (PostgreSQL only)."""
        if engine.dialect.name != "postgresql":
            return
        before = datetime.now(UTC)
        with engine.connect() as conn:
            server = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        after = datetime.now(UTC)
        self._offset = server - (before + (after - before) / 2)

    def now(self) -> datetime:
        """Lease time now (aware UTC)."""
        return datetime.now(UTC) + self._offset


class AccountLeases:
    """The accounts this process holds on PostgreSQL, kept by a heartbeat thread.

    ``accounts`` gives the configured account ids (a reload may change them); ``on_acquired``
    is called (in the heartbeat thread) with accounts newly taken, before they are handed out
    by :meth:`held`.
    """

    def __init__(
        self,
        engine: Engine,
        accounts: Callable[[], Collection[str]],
        *,
        ttl: timedelta = DEFAULT_TTL,
        holder: str | None = None,
        on_acquired: Callable[[frozenset[str]], object] | None = None,
        in_hand: Callable[[frozenset[str]], bool] | None = None,
    ) -> None:
        """``in_hand(accounts)``: whether a send of theirs is being made (the outbox's rows
        ``sending``); a lease handed over is released once it says no. Without it a lease is
        released one full heartbeat after it stopped being handed out."""
        if engine.dialect.name != "postgresql":
            raise ValueError("account leases need PostgreSQL; SQLite runs one process")
        self.engine = engine
        self.holder = holder or holder_id()
        self.ttl = ttl
        self.clock = LeaseClock()
        self._accounts = accounts
        self._on_acquired = on_acquired
        self._held: frozenset[str] = frozenset()
        self._leaving: frozenset[str] = frozenset()  # no longer handed out; released next beat
        self._in_hand = in_hand
        self._wanting = False  # fewer accounts than its fair share: look again soon
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ttl_sql = sa.text(f"interval '{int(ttl.total_seconds() * 1000)} milliseconds'")

    def held(self) -> frozenset[str]:
        """The accounts this process sends for now."""
        return self._held

    def start(self) -> None:
        """Register this process, take a first share, and start the heartbeat thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="qunfu-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and give every lease up at once (a clean stop hands over fast)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._held = frozenset()
        with contextlib.suppress(Exception), self.engine.begin() as conn:
            conn.execute(sa.delete(AccountLease).where(col(AccountLease.holder) == self.holder))
            conn.execute(sa.delete(WorkerLease).where(col(WorkerLease.holder) == self.holder))

    def _run(self) -> None:
        while not self._stop.wait(self.period()):
            try:
                self.beat()
            except Exception as exc:  # safe: a missed beat only lets leases run down
                logger.opt(exception=exc).warning("lease heartbeat failed: {}", exc)

    def period(self) -> float:
        """Seconds to the next heartbeat: a third of the lease time, at most
        :data:`REBALANCE_EVERY_S` (a process that joined is noticed soon); while a hand-over is
        under way (leases let go, or fewer than the fair share held) :data:`HANDOVER_EVERY_S`,
        so an account handed over is idle for about a second, not two heartbeats."""
        if (self._leaving and self._in_hand is not None) or self._wanting:
            return HANDOVER_EVERY_S
        return min(self.ttl.total_seconds() / 3, REBALANCE_EVERY_S)

    def beat(self) -> frozenset[str]:
        """One heartbeat: renew, give up the surplus, take a fair share; returns held.

        Each step is one short transaction. A lease found lost (it expired and another process
        took it) is dropped from :meth:`held` at once.
        """
        self.clock.sync(self.engine)
        configured = set(self._accounts())
        with self.engine.begin() as conn:
            self._register(conn)
            renewed = self._renew(conn)
            live = int(
                conn.execute(
                    sa.select(sa.func.count()).where(col(WorkerLease.expires_at) > sa.func.now())
                ).scalar_one()
            )
            holdings = [
                int(n)
                for (n,) in conn.execute(
                    sa.select(sa.func.count())
                    .where(col(AccountLease.expires_at) > sa.func.now())
                    .group_by(col(AccountLease.holder))
                )
            ]
        lost = self._held - renewed - self._leaving
        if lost:
            logger.bind(accounts=sorted(lost)).warning("account leases lost to another process")
        # Leases let go at an earlier beat are released now, once no send of theirs is in hand
        # (asked of the outbox; without it, a whole heartbeat is taken to be enough).
        in_hand = self._in_hand
        if self._leaving and (in_hand is None or not in_hand(self._leaving)):
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(AccountLease).where(
                        col(AccountLease.holder) == self.holder,
                        col(AccountLease.account).in_(sorted(self._leaving)),
                    )
                )
            renewed -= self._leaving
            self._leaving = frozenset()
        keep = (renewed & configured) - self._leaving
        share = math.ceil(len(configured) / max(live, 1))
        if len(keep) > share:
            extra = sorted(keep)[share:]
            self._leaving = self._leaving | frozenset(extra)
            keep -= self._leaving
            logger.bind(accounts=extra).info("account leases handed over (fair share)")
        elif len(keep) < share:
            keep |= self._take(sorted(configured - keep - self._leaving), share - len(keep))
        # Short of the fair share while an account is free or a process holds more than its
        # share (it is letting some go): look again soon. Not when the shares merely do not
        # divide evenly (20 accounts, 3 processes: 7, 7 and 6), where nothing will change.
        self._wanting = len(keep) < share and (
            sum(holdings) < len(configured) or any(n > share for n in holdings)
        )
        self._held = frozenset(keep)
        return self._held

    def _register(self, conn: sa.Connection) -> None:
        stmt = postgresql.insert(WorkerLease).values(
            holder=self.holder, started_at=sa.func.now(), expires_at=sa.func.now() + self._ttl_sql
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["holder"], set_={"expires_at": stmt.excluded.expires_at}
            )
        )
        # Rows of processes long gone: kept a while for people looking, then removed.
        conn.execute(
            sa.delete(WorkerLease).where(
                col(col(WorkerLease.expires_at)) < sa.func.now() - sa.text("interval '1 hour'")
            )
        )

    def _renew(self, conn: sa.Connection) -> set[str]:
        rows = conn.execute(
            sa.update(AccountLease)
            .where(
                col(AccountLease.holder) == self.holder,
                col(AccountLease.expires_at) > sa.func.now(),
            )
            .values(expires_at=sa.func.now() + self._ttl_sql)
            .returning(col(AccountLease.account))
        )
        return {r[0] for r in rows}

    def _take(self, candidates: list[str], wanted: int) -> set[str]:
        """Take up to ``wanted`` accounts that nobody holds or whose lease expired."""
        if wanted <= 0 or not candidates:
            return set()
        with self.engine.connect() as conn:
            busy = {
                r[0]
                for r in conn.execute(
                    sa.select(col(AccountLease.account)).where(
                        col(AccountLease.account).in_(candidates),
                        col(AccountLease.expires_at) > sa.func.now(),
                    )
                )
            }
        taken: set[str] = set()
        for account in [a for a in candidates if a not in busy]:
            if len(taken) == wanted:
                break
            insert = postgresql.insert(AccountLease).values(
                account=account,
                holder=self.holder,
                acquired_at=sa.func.now(),
                expires_at=sa.func.now() + self._ttl_sql,
            )
            stmt = insert.on_conflict_do_update(
                index_elements=["account"],
                set_={
                    "holder": insert.excluded.holder,
                    "acquired_at": insert.excluded.acquired_at,
                    "expires_at": insert.excluded.expires_at,
                },
                # Compare-and-set: only a lease that lapsed (its holder stopped beating).
                where=col(AccountLease.expires_at) <= sa.func.now(),
            ).returning(col(AccountLease.account))
            with self.engine.begin() as conn:
                if conn.execute(stmt).first() is not None:
                    taken.add(account)
        if taken and self._on_acquired is not None:
            # Before the accounts are handed out: what a dead holder left mid-send is uncertain.
            try:
                self._on_acquired(frozenset(taken))
            except Exception:
                with self.engine.begin() as conn:  # not ours half-way: let them go again
                    conn.execute(
                        sa.delete(AccountLease).where(
                            col(AccountLease.holder) == self.holder,
                            col(AccountLease.account).in_(sorted(taken)),
                        )
                    )
                raise
        if taken:
            logger.bind(accounts=sorted(taken), holder=self.holder).info("account leases taken")
        return taken
