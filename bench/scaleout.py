"""Scale-out benchmark: deliveries per minute with 1, 2 and 3 ``qunfu run`` processes.

    python bench/scaleout.py [--groups 4000] [--accounts 20] [--rate 30] [--speed 20]
                             [--runs 3] [--processes 1,2,3] [--database URL]

Each run is a fresh world: a PostgreSQL database (``--database``, else a throwaway server
started like the tests' fixture), a campaigns folder with ``--groups`` groups served by
``--accounts`` simulated accounts of ``--rate`` sends a minute each, and one push whose
occurrence is a few simulated seconds after the start. N processes run it on the simulator at
``--speed``; deliveries per minute are measured on the bot's clock from the audit log (outbox
rows ``sent``), between the first and last send of the occurrence. Printed: the median of
``--runs`` runs per N and its ratio to the configured total rate (accounts x rate; goal >= 0.95,
never above 1). The world builder is shared with tests/integration/test_scaleout.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.clock import SHANGHAI  # noqa: E402

CAMPAIGN = "scale-push"
# The simulated day starts just before the push: 11:59:50 for a 12:00 occurrence.
FIRE_AT = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
LEAD = timedelta(seconds=10)


@dataclass(frozen=True)
class World:
    """A generated deployment: where its config is and what it was built with."""

    config: Path
    groups: int
    accounts: list[str]
    rate: float
    speed: float
    url: str

    @property
    def total_rate(self) -> float:
        """Configured sends per minute of all accounts together."""
        return self.rate * len(self.accounts)


def write_world(
    base: Path,
    url: str,
    *,
    groups: int,
    accounts: int,
    rate: float,
    speed: float,
    lease_ttl: str = "6s",
    spread: str = "1m",
    started: datetime | None = None,
    ready_in: timedelta = timedelta(seconds=20),
) -> World:
    """A config.yaml and a campaigns folder under ``base``: ``groups`` groups, ``accounts``
    accounts, one non-marketing push at 12:00 (Asia/Shanghai), the simulated clock starting
    ``LEAD`` before it at the real instant ``started`` (default: ``ready_in`` from now, time
    for the processes to load the groups; until then their clocks read earlier), shared by
    every process started from this config, restarts included."""
    started = started or datetime.now(UTC) + ready_in
    campaigns, templates = base / "campaigns", base / "templates"
    campaigns.mkdir(parents=True, exist_ok=True)
    templates.mkdir(parents=True, exist_ok=True)
    lines = ["groups:"]
    for i in range(groups):
        lat, lon = 22.5 + (i % 100) * 0.001, 113.9 + (i // 100) * 0.001
        lines += [
            f"  - id: g{i:05d}",
            f"    name: 福利{i}群",
            "    city: 深圳",
            f"    location: {{lat: {lat:.4f}, lon: {lon:.4f}, crs: gcj02}}",
            "    capacity: 500",
            "    members: 10",
        ]
    (campaigns / "groups.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (campaigns / "push.yaml").write_text(
        f"id: {CAMPAIGN}\nname: 午间福利\nkind: daily\nmarketing: false\n"
        f"schedule: {{at: \"12:00\", spread: {spread}}}\ntemplate: push.j2\n",
        encoding="utf-8",
    )
    (templates / "push.j2").write_text("{{ group.name }}：今天的午间福利到了。\n", encoding="utf-8")
    ids = [f"bot-{i:02d}" for i in range(accounts)]
    account_lines = "\n".join(f"  - {{id: {a}, rate_per_minute: {rate:g}}}" for a in ids)
    start = FIRE_AT - LEAD
    config = base / "config.yaml"
    config.write_text(
        "gateway: simulator\ncampaigns_dir: campaigns\ntemplates_dir: templates\n"
        f"bot: {{id: {ids[0]}, name: 群福助手}}\n"
        f"database: {{url: \"{url}\", lease_ttl: {lease_ttl}}}\n"
        f"accounts:\n{account_lines}\n"
        f"outbox: {{rate_per_minute: {rate:g}, jitter: 0s, grace: 6h}}\n"
        "quiet_hours: {enabled: false}\n"
        f"simulator: {{demo: null, speed: {speed:g}, console: false, "
        f"start: \"{start.isoformat()}\", started: \"{started.isoformat()}\"}}\n"
        "web: {enabled: false}\n",
        encoding="utf-8",
    )
    return World(config, groups, ids, rate, speed, url)


def start_process(world: World, log: Path) -> subprocess.Popen[bytes]:
    """``qunfu run`` on the world's config, output to ``log`` (appended)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(world.config), "--no-demo"]
        + ["--speed", f"{world.speed:g}"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(world.config.parent),
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (a clean stop hands its leases over), then kill if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def outbox_counts(url: str) -> dict[str, int]:
    """Rows of the push's occurrence by status (an empty dict before the tables exist)."""
    engine = sa.create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT status, count(*) FROM outbox WHERE campaign_id = :c GROUP BY 1"),
                {"c": CAMPAIGN},
            ).all()
        return {status: int(n) for status, n in rows}
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return {}  # not created yet (polled while the first process starts)
    finally:
        engine.dispose()


def sent_times(url: str) -> list[datetime]:
    """When each send of the push was made (``last_attempt_at``: the gateway call pacing
    counts), bot's clock, ascending."""
    engine = sa.create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT last_attempt_at FROM outbox WHERE campaign_id = :c "
                    "AND status = 'sent' ORDER BY last_attempt_at"
                ),
                {"c": CAMPAIGN},
            ).all()
    finally:
        engine.dispose()
    return [_aware(r[0]) for r in rows]


def wait_until(predicate, timeout: float, every: float = 0.5) -> bool:  # noqa: ANN001
    """Poll ``predicate`` until true or ``timeout`` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _sync_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def run_once(url: str, processes: int, args: argparse.Namespace, work: Path) -> float:
    """One world, ``processes`` processes until the push is sent; deliveries per minute."""
    world = write_world(
        work, url, groups=args.groups, accounts=args.accounts, rate=args.rate, speed=args.speed
    )
    procs = [start_process(world, work / f"run{i}.log") for i in range(processes)]
    try:
        done = wait_until(lambda: outbox_counts(url).get("sent", 0) >= args.groups, args.timeout)
    finally:
        for p in procs:
            stop_process(p)
    if not done:
        raise SystemExit(f"not delivered within {args.timeout}s: {outbox_counts(url)}")
    times = sent_times(url)
    minutes = (times[-1] - times[0]).total_seconds() / 60
    return (len(times) - 1) / minutes


def _fresh_database(server: str, n: int) -> str:
    name = f"scaleout_{os.getpid()}_{n}"
    admin = sa.create_engine(_sync_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return sa.engine.make_url(_sync_url(server)).set(database=name).render_as_string(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rate", type=float, default=30)
    parser.add_argument("--speed", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--database", help="a PostgreSQL server URL (its database is unused)")
    args = parser.parse_args()
    cluster = None
    server = args.database
    if server is None:
        from tests.conftest import _Cluster, _pg_bindir, _run_as  # the tests' throwaway server

        bindir = _pg_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL found; pass --database")
        root = Path(tempfile.mkdtemp(prefix="qunfu-bench-pg-"))
        os.chmod(root, 0o700)
        run_as = _run_as()
        if run_as:
            import pwd

            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = _Cluster(bindir, root, run_as)
        cluster.start()
        server = cluster.url("postgres")
    total = args.rate * args.accounts
    print(
        f"{args.groups} groups, {args.accounts} accounts x {args.rate:g}/min = {total:g}/min "
        f"configured, clock x{args.speed:g}, median of {args.runs} runs"
    )
    counter = 0
    try:
        for n in (int(x) for x in args.processes.split(",")):
            rates = []
            for _ in range(args.runs):
                counter += 1
                url = _fresh_database(server, counter)
                with tempfile.TemporaryDirectory(prefix="qunfu-scaleout-") as work:
                    rates.append(run_once(url, n, args, Path(work)))
            median = statistics.median(rates)
            print(
                f"{n} process{'es' if n > 1 else ''}: {median:8.1f} deliveries/min "
                f"(runs: {', '.join(f'{r:.1f}' for r in rates)})  ratio {median / total:.3f}"
            )
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
