"""Benchmark the outbox's ``next_due`` and a claim against the size of its history.

    python bench/outbox.py [--sizes 0 100000 1000000] [--runs 50] [--pending 500] [--url URL]

For each size, a database (SQLite in a temp dir; with ``--url``, a PostgreSQL schema of its own,
``bench_outbox_<size>``, dropped afterwards) gets that many ``sent`` audit rows by bulk insert and
is analysed; then ``--pending`` sends of one account arrive (a push in progress, after the
statistics were taken, as in a long-running database where ANALYZE ran while nothing was
pending). Then, in rounds, each size in turn: ``Outbox.next_due()`` and ``Outbox.claim()``
(pacing slot + row, one transaction), the virtual clock moving past the pacing interval between
claims. Rounds interleave the sizes so that load from other processes on the machine falls on
all of them alike.

Per size it prints the median wall time and the median CPU time of this process (on SQLite all
of the work; on PostgreSQL only the client's), and on Linux with SQLite the median pages read
from and written to the files per claim (``/proc/self/io``: work, not time, so unaffected by a
busy machine). Last, each median's ratio to the first size. Times only, no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from loguru import logger  # noqa: E402

from bot.config import OutboxSettings, QuietHours  # noqa: E402
from bot.events import Say  # noqa: E402
from bot.outbox import Outbox, OutboxItem  # noqa: E402
from db.models import OutboxRow  # noqa: E402
from db.session import make_engine, normalise_url, upgrade  # noqa: E402
from scheduler.clock import VirtualClock  # noqa: E402

T0 = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
_CHUNK = 20_000
_PENDING = 500
_PAGE = 4096
_PROC_IO = Path("/proc/self/io")


def fill_history(engine: sa.Engine, rows: int) -> None:
    """``rows`` sent rows over the past year, by multi-row executemany in chunks."""
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    stmt = table.insert()
    with engine.begin() as conn:
        for start in range(0, rows, _CHUNK):
            batch = []
            for i in range(start, min(rows, start + _CHUNK)):
                at = T0 - timedelta(days=365) + timedelta(seconds=30 * i % (365 * 86400))
                batch.append(
                    {
                        "key": f"hist:{i}",
                        "account": f"bot{i % 3}",
                        "action": "say",
                        "conversation": f"room:g{i % 20000:05d}",
                        "text": "午餐优惠，附近商户满减",
                        "mentions": [],
                        "marketing": True,
                        "not_before": at,
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": at,
                        "last_attempt_at": at,
                        "created_at": at,
                        "sent_at": at,
                    }
                )
            conn.execute(stmt, batch)


def _io_pages() -> tuple[float, float] | None:
    """Bytes this process has read and written through system calls, in pages (Linux)."""
    if not _PROC_IO.exists():
        return None
    fields = dict(line.split(": ") for line in _PROC_IO.read_text().splitlines())
    return int(fields["rchar"]) / _PAGE, int(fields["wchar"]) / _PAGE


@dataclass
class Subject:
    """One history size: its engine, outbox and virtual clock, and what was measured."""

    size: int
    engine: sa.Engine
    outbox: Outbox
    clock: VirtualClock
    due_wall: list[float] = field(default_factory=list)
    claim_wall: list[float] = field(default_factory=list)
    claim_cpu: list[float] = field(default_factory=list)
    claim_read: list[float] = field(default_factory=list)
    claim_written: list[float] = field(default_factory=list)

    def round(self) -> None:
        """Time one next_due() and one claim()."""
        t = time.perf_counter()
        due = self.outbox.next_due()
        self.due_wall.append(time.perf_counter() - t)
        assert due is not None
        self.clock.set(max(due, self.clock.now()))
        io = _io_pages()
        cpu, t = time.process_time(), time.perf_counter()
        row = self.outbox.claim("bot0")
        self.claim_wall.append(time.perf_counter() - t)
        self.claim_cpu.append(time.process_time() - cpu)
        assert row is not None
        if io is not None and self.engine.dialect.name == "sqlite":
            after = _io_pages()
            assert after is not None
            self.claim_read.append(after[0] - io[0])
            self.claim_written.append(after[1] - io[1])


def prepare(engine: sa.Engine, size: int, runs: int, pending: int = _PENDING) -> Subject:
    """Migrate, load ``size`` audit rows, analyse and settle, then queue a push."""
    upgrade(engine)
    fill_history(engine, size)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE outbox"
            )
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            # A settled WAL, as a long-running database has: not the bulk load's aftermath.
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    clock = VirtualClock(T0)
    settings = OutboxSettings(rate_per_minute=20, jitter=timedelta(seconds=3), seed=1)
    outbox = Outbox(engine, settings, QuietHours(enabled=False), clock)
    outbox.enqueue(
        OutboxItem(f"push:{g}", Say(f"room:g{g:05d}", "午餐"), T0, account="bot0")
        for g in range(max(pending, runs))
    )
    return Subject(size, engine, outbox, clock)


@contextmanager
def engines(url: str | None, sizes: list[int]) -> Iterator[dict[int, sa.Engine]]:
    """An empty database per size: SQLite files in a temp dir, or PostgreSQL schemas."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            made = {n: make_engine(f"sqlite:///{Path(tmp) / f'h{n}.db'}") for n in sizes}
            try:
                yield made
            finally:
                for engine in made.values():
                    engine.dispose()
        return
    admin = make_engine(url)
    schemas = {n: f"bench_outbox_{n}" for n in sizes}
    _each(admin, [f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in schemas.values()])
    _each(admin, [f"CREATE SCHEMA {s}" for s in schemas.values()])
    made = {
        n: sa.create_engine(normalise_url(url), connect_args={"options": f"-csearch_path={s}"})
        for n, s in schemas.items()
    }
    try:
        yield made
    finally:
        for engine in made.values():
            engine.dispose()
        _each(admin, [f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in schemas.values()])
        admin.dispose()


def _each(engine: sa.Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pending", type=int, default=_PENDING, help="sends queued per size")
    parser.add_argument("--url", help="PostgreSQL URL (schemas bench_outbox_<size> are used)")
    args = parser.parse_args()
    logger.remove()  # a log line per queued send would drown the figures
    with engines(args.url, args.sizes) as made:
        subjects = [prepare(made[n], n, args.runs, args.pending) for n in args.sizes]
        for _ in range(args.runs):
            for subject in subjects:
                subject.round()
    for s in subjects:
        pages = (
            f", pages read {statistics.median(s.claim_read):.1f} "
            f"written {statistics.median(s.claim_written):.1f}"
            if s.claim_written
            else ""
        )
        print(
            f"{s.size:>9,} audit rows: next_due {_ms(s.due_wall)}, claim {_ms(s.claim_wall)} "
            f"(cpu {_ms(s.claim_cpu)}{pages})"
        )
    base = subjects[0]
    median: Callable[[list[float]], float] = statistics.median
    print(
        f"medians of {args.runs} interleaved runs, {max(args.pending, args.runs)} pending; "
        f"ratio to {base.size:,} rows:"
    )
    for s in subjects:
        print(
            f"{s.size:>9,}: next_due {median(s.due_wall) / median(base.due_wall):.2f}x, "
            f"claim {median(s.claim_wall) / median(base.claim_wall):.2f}x "
            f"(cpu {median(s.claim_cpu) / median(base.claim_cpu):.2f}x)"
        )


if __name__ == "__main__":
    main()
