"""Several ``qunfu run`` processes on one database (issue 9, items 4 and 5), with real processes.

A generated world (20,000 groups, 20 accounts, one push at 12:00 on a shared fast simulated
clock) is delivered while processes are killed with SIGKILL: on PostgreSQL three processes
share it, one killed mid-fan-out and another mid-delivery; on SQLite one process is killed and
restarted three times. Everything is asserted from the outbox table (the audit log): every group
got the push exactly once, or its row is ``uncertain`` (a send cut off by the kill) or expired
with its reason, each counted; no account called more than its rate in any 60 seconds of the
bot's clock. A second ``qunfu run`` on a SQLite database in use refuses to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.scaleout import (
    CAMPAIGN,
    World,
    outbox_counts,
    start_process,
    stop_process,
    wait_until,
    write_world,
)

pytestmark = pytest.mark.slow

GROUPS = 20_000
ACCOUNTS = 20
RATE = 60  # per account and minute: 1,200 a minute in all, 16.7 simulated minutes for 20,000
SPEED = 12  # about 80 s of wall time at the configured rate
DEADLINE_S = 240  # a hung run fails here instead of holding CI


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _fanout_state(url: str) -> tuple[str | None, bool, int]:
    """(holder, fanned out, rows queued) of the push's occurrence."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT holder, fanned_out_at IS NOT NULL FROM schedule_occurrence "
                    "WHERE campaign_id = :c"
                ),
                {"c": CAMPAIGN},
            ).first()
            queued = conn.execute(
                sa.text("SELECT count(*) FROM outbox WHERE campaign_id = :c"), {"c": CAMPAIGN}
            ).scalar_one()
    except sa.exc.DBAPIError:
        return None, False, 0
    finally:
        engine.dispose()
    if row is None:
        return None, False, int(queued)
    return row[0], bool(row[1]), int(queued)


def _pid(holder: str) -> int:
    return int(holder.split(":")[1])


def _kill_mid_fanout(url: str, procs: list[subprocess.Popen[bytes]]) -> int:
    """Wait until a process is part-way through the fan-out, SIGKILL it; its pid."""
    seen: dict[str, object] = {}

    def midway() -> bool:
        holder, done, queued = _fanout_state(url)
        assert not done, "the fan-out finished before it could be interrupted"
        seen["holder"] = holder
        return holder is not None and queued > 0

    assert wait_until(midway, DEADLINE_S, every=0.05)
    pid = _pid(str(seen["holder"]))
    os.kill(pid, signal.SIGKILL)
    next(p for p in procs if p.pid == pid).wait()
    return pid


def _sent(url: str) -> int:
    return outbox_counts(url).get("sent", 0)


def _finished(url: str) -> bool:
    counts = outbox_counts(url)
    return sum(counts.values()) == GROUPS and counts.get("pending", 0) == 0 and not counts.get(
        "sending"
    )


def _assert_audit(world: World) -> Counter[str]:
    """Every group once; the rest counted with a reason; no account above its rate."""
    engine = _engine(world.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT group_id, account, status, last_error, last_attempt_at "
                    "FROM outbox WHERE campaign_id = :c"
                ),
                {"c": CAMPAIGN},
            ).all()
            occurrence = conn.execute(
                sa.text(
                    "SELECT status, fanned_out_at FROM schedule_occurrence WHERE campaign_id = :c"
                ),
                {"c": CAMPAIGN},
            ).all()
    finally:
        engine.dispose()
    assert len(occurrence) == 1 and occurrence[0][0] == "enqueued" and occurrence[0][1]
    per_group = Counter(r.group_id for r in rows)
    assert len(per_group) == GROUPS and set(per_group.values()) == {1}
    statuses = Counter(r.status for r in rows)
    assert set(statuses) <= {"sent", "uncertain", "failed"}, statuses
    for r in rows:
        if r.status != "sent":
            assert r.last_error, f"{r.group_id}: {r.status} without a reason"
    calls: dict[str, list[datetime]] = defaultdict(list)
    for r in rows:
        if r.last_attempt_at is not None:
            at = r.last_attempt_at
            calls[r.account].append(datetime.fromisoformat(at) if isinstance(at, str) else at)
    window = timedelta(seconds=60)
    for account, times in calls.items():
        times.sort()
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - window:
                start += 1
            assert end - start + 1 <= RATE, f"{account}: {end - start + 1} calls within 60 s"
    return statuses


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)  # 20,000 deliveries at the machine's send rate take minutes
def test_three_processes_on_postgresql_survive_kills_mid_fanout_and_mid_delivery(
    pg_cluster, tmp_path: Path, processes: list[subprocess.Popen[bytes]]  # noqa: ANN001
) -> None:
    name = f"scaleout_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    try:
        world = write_world(
            tmp_path, url, groups=GROUPS, accounts=ACCOUNTS, rate=RATE, speed=SPEED
        )
        processes += [start_process(world, tmp_path / f"run{i}.log") for i in range(3)]
        first = _kill_mid_fanout(url, processes)
        # A survivor resumes the fan-out once the claim lapses; then one is killed mid-delivery.
        assert wait_until(lambda: _sent(url) > GROUPS // 3, DEADLINE_S)
        survivors = [p for p in processes if p.pid != first]
        survivors[0].kill()
        survivors[0].wait()
        assert wait_until(lambda: _finished(url), DEADLINE_S), outbox_counts(url)
        assert survivors[1].poll() is None  # the last one still runs, holding every account
        engine = _engine(url)
        with engine.connect() as conn:
            holders = conn.execute(
                sa.text("SELECT DISTINCT holder FROM account_lease WHERE expires_at > now()")
            ).scalars().all()
        engine.dispose()
        assert [_pid(h) for h in holders] == [survivors[1].pid]
        stop_process(survivors[1])
        statuses = _assert_audit(world)
        # Only sends in hand at a kill can be uncertain: at most one per account killed.
        assert statuses["uncertain"] <= ACCOUNTS
        assert statuses["sent"] + statuses["uncertain"] + statuses["failed"] == GROUPS
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        pg_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sqlite_one_process_killed_and_restarted_three_times_delivers_once(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'qunfu.db'}"
    world = write_world(tmp_path, url, groups=GROUPS, accounts=ACCOUNTS, rate=RATE, speed=SPEED)
    log = tmp_path / "run.log"
    processes.append(start_process(world, log))
    _kill_mid_fanout(url, processes)
    for fraction in (4, 2):  # killed again at a quarter and at half delivered
        processes.append(start_process(world, log))
        assert wait_until(lambda f=fraction: _sent(url) > GROUPS // f, DEADLINE_S)
        processes[-1].kill()
        processes[-1].wait()
    processes.append(start_process(world, log))
    assert wait_until(lambda: _finished(url), DEADLINE_S), outbox_counts(url)
    stop_process(processes[-1])
    statuses = _assert_audit(world)
    assert statuses["uncertain"] <= 2 * ACCOUNTS  # sends in hand at the two delivery kills


def test_a_second_run_on_the_same_sqlite_database_refuses_before_touching_it(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'qunfu.db'}"
    world = write_world(tmp_path, url, groups=10, accounts=2, rate=RATE, speed=1)
    processes.append(start_process(world, tmp_path / "first.log"))
    assert wait_until(lambda: "Ctrl-C to stop" in (tmp_path / "first.log").read_text(), 60)
    second = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(world.config), "--no-demo"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert second.returncode != 0
    message = second.stderr + second.stdout
    assert f"pid {processes[0].pid}" in message and "SQLite takes one process" in message
    assert "Traceback" not in message
    assert "Qunfu on the simulator" not in message  # stopped before loading anything
    stop_process(processes[0])
    # Once the first has stopped, the next one starts.
    processes.append(start_process(world, tmp_path / "third.log"))
    assert wait_until(lambda: "Ctrl-C to stop" in (tmp_path / "third.log").read_text(), 60)
    stop_process(processes[-1])
