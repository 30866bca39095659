"""Benchmark the outbox's ``next_due`` and a claim against the size of its history.

    python bench/outbox.py [--sizes 0 100000 1000000] [--runs 50] [--url URL]

For each size, a fresh database (SQLite in a temp dir, or ``--url``, which is wiped) gets that
many ``sent`` audit rows by bulk insert, plus 500 pending sends of one account (a push in
progress). Then ``Outbox.next_due()`` and ``Outbox.claim()`` (pacing slot + row, one
transaction) are timed ``--runs`` times each; the virtual clock moves past the pacing interval
between claims. Prints the median per size and, last, each median's ratio to the 0-row figure.
Times only, no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from loguru import logger  # noqa: E402

from bot.config import OutboxSettings, QuietHours  # noqa: E402
from bot.events import Say  # noqa: E402
from bot.outbox import Outbox, OutboxItem  # noqa: E402
from db.models import OutboxRow  # noqa: E402
from db.session import make_engine, upgrade  # noqa: E402
from scheduler.clock import VirtualClock  # noqa: E402

T0 = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
_CHUNK = 20_000


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


def measure(url: str, history: int, runs: int) -> tuple[float, float]:
    """Median seconds of next_due() and of claim() with ``history`` audit rows."""
    upgrade(url)
    engine = make_engine(url)
    try:
        fill_history(engine, history)
        with engine.begin() as conn:
            # Statistics and a settled WAL, as a long-running database has: the figures should
            # not include the aftermath of the bulk load.
            conn.exec_driver_sql(
                "ANALYZE outbox" if engine.dialect.name == "postgresql" else "ANALYZE"
            )
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        clock = VirtualClock(T0)
        settings = OutboxSettings(rate_per_minute=20, jitter=timedelta(seconds=3), seed=1)
        outbox = Outbox(engine, settings, QuietHours(enabled=False), clock)
        outbox.enqueue(
            OutboxItem(f"push:{g}", Say(f"room:g{g:05d}", "午餐"), T0, account="bot0")
            for g in range(max(500, runs))
        )
        due_times, claim_times = [], []
        for _ in range(runs):
            t = time.perf_counter()
            due = outbox.next_due()
            due_times.append(time.perf_counter() - t)
            assert due is not None
            clock.set(max(due, clock.now()))
            t = time.perf_counter()
            row = outbox.claim("bot0")
            claim_times.append(time.perf_counter() - t)
            assert row is not None
        return statistics.median(due_times), statistics.median(claim_times)
    finally:
        engine.dispose()


def _wipe(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--url", help="PostgreSQL URL to use (its public schema is wiped)")
    args = parser.parse_args()
    logger.remove()  # a log line per queued send would drown the figures
    results: dict[int, tuple[float, float]] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            if args.url:
                _wipe(url)
            results[size] = measure(url, size, args.runs)
        due, claim = results[size]
        print(f"{size:>9,} audit rows: next_due {due * 1e3:.3f} ms, claim {claim * 1e3:.3f} ms")
    base_due, base_claim = results[args.sizes[0]]
    print(f"medians of {args.runs} runs; ratio to {args.sizes[0]:,} rows:")
    for size, (due, claim) in results.items():
        print(f"{size:>9,}: next_due {due / base_due:.2f}x, claim {claim / base_claim:.2f}x")


if __name__ == "__main__":
    main()
