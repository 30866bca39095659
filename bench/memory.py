"""Memory and start-up time of ``qunfu run`` on a bank-sized database.

    python bench/memory.py [--groups 2000] [--members 1000000] [--runs 3] [--port 8611]

Generates, in a temporary folder, the shipped campaigns plus ``--groups`` generated groups and a
SQLite database holding them with ``--members`` open memberships (one person each, all already
welcomed), inserted with bulk Core inserts. Then starts the real ``qunfu run --no-demo`` (the
simulator gateway, which puts everyone the database says is in a group back into its room) as a
child process and measures

* time to ready: from the spawn until ``/healthz`` answers 200 (the banner is printed then too);
* peak RSS: the child's ``VmHWM`` from ``/proc/<pid>/status``, read once it is ready and has
  done its first pass of due work (``--settle`` seconds later), before it is stopped.

The baseline, in the same run and interleaved with it, is the same command on the same groups
with no people and no memberships, so the difference is what the memberships cost. Prints each
run, the medians of ``--runs`` runs, and last the ratios to the goals of issue 8 (peak RSS
< 300 MB, ready < 15 s). No assertions: figures only. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from db.models import Membership, PersonRow, WelfareGroupRow  # noqa: E402
from db.session import make_engine, upgrade  # noqa: E402

GOAL_RSS_MB = 300.0
GOAL_READY_S = 15.0
HOST = "127.0.0.1"
CHUNK = 20_000
CENTRES = [
    ("深圳", "南山区", 22.54, 113.93),
    ("广州", "天河区", 23.13, 113.33),
    ("上海", "浦东新区", 31.22, 121.54),
    ("北京", "朝阳区", 39.92, 116.44),
    ("成都", "武侯区", 30.64, 104.04),
]


def write_folder(base: Path, n_groups: int, port: int, seed: int = 5) -> list[dict[str, object]]:
    """The shipped campaigns and templates plus ``n_groups`` generated groups, and a config.yaml
    for the simulator without demo or console; returns the generated groups' rows."""
    shutil.copytree(ROOT / "campaigns", base / "campaigns")
    shutil.copytree(ROOT / "templates", base / "templates")
    rng = random.Random(seed)
    lines, rows = ["groups:"], []
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n_groups):
        city, district, lat0, lon0 = CENTRES[i % len(CENTRES)]
        lat, lon = lat0 + rng.gauss(0, 0.08), lon0 + rng.gauss(0, 0.08)
        gid, name = f"bench-{i:05d}", f"{city}福利{i}群"
        lines.append(
            f"  - {{id: {gid}, name: {name}, city: {city}, district: {district}, "
            f"location: {{lat: {lat:.5f}, lon: {lon:.5f}, crs: gcj02}}, capacity: 500, "
            "members: 0}"
        )
        rows.append(
            {
                "id": gid,
                "name": name,
                "city": city,
                "district": district,
                "lat": round(lat, 5),
                "lon": round(lon, 5),
                "crs": "gcj02",
                "capacity": 500,
                "member_count": 0,
                "tags": [],
                "manager": None,
                "updated_at": stamp,
            }
        )
    (base / "campaigns" / "bench-groups.yaml").write_text("\n".join(lines) + "\n", "utf-8")
    (base / "config.yaml").write_text(
        "gateway: simulator\n"
        "database: {url: 'sqlite:///var/qunfu.db'}\n"
        "simulator: {demo: null, speed: 1, console: false}\n"
        f"web: {{host: {HOST}, port: {port}, enabled: true}}\n",
        "utf-8",
    )
    return rows


def make_database(path: Path, groups: list[dict[str, object]], members: int) -> float:
    """A migrated SQLite database with ``groups`` and ``members`` open, welcomed memberships
    spread evenly over them (one person each); returns the seconds it took."""
    t0 = time.perf_counter()
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    per_group = members // max(1, len(groups))
    rows = [{**g, "member_count": per_group + (i < members % len(groups))} for i, g in
            enumerate(groups)] if groups else []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sa.insert(WelfareGroupRow.__table__), rows)  # type: ignore[attr-defined]
        for lo in range(0, members, CHUNK):
            hi = min(members, lo + CHUNK)
            people, stays = [], []
            for n in range(lo, hi):
                at = start + timedelta(minutes=n % 500_000)
                pid = f"p{n:07d}"
                people.append({"id": pid, "name": f"会员{n}", "first_seen": at, "opted_out": False})
                stays.append(
                    {
                        "group_id": groups[n % len(groups)]["id"],
                        "person_id": pid,
                        "joined_at": at,
                        "left_at": None,
                        "inviter_id": None,
                        "channel": None,
                        "welcomed_at": at,
                    }
                )
            conn.execute(sa.insert(PersonRow.__table__), people)  # type: ignore[attr-defined]
            conn.execute(sa.insert(Membership.__table__), stays)  # type: ignore[attr-defined]
    engine.dispose()
    return time.perf_counter() - t0


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as r:
            return r.status == 200 and json.load(r).get("ok") is True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def one_run(base: Path, db: Path, port: int, settle: float, timeout: float) -> dict[str, float]:
    """Start ``qunfu run --no-demo`` on a fresh copy of ``db``; time to ready and peak RSS."""
    var = base / "var"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir()
    shutil.copyfile(db, var / "qunfu.db")
    log = (base / "run.log").open("wb")
    cmd = [sys.executable, "-m", "bot", "run", "--config", str(base / "config.yaml"), "--no-demo"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        while not _healthy(port):
            if proc.poll() is not None:
                raise SystemExit(
                    f"qunfu run exited with status {proc.returncode}; see {base / 'run.log'}:\n"
                    + (base / "run.log").read_text("utf-8", "replace")[-2000:]
                )
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"qunfu run not ready within {timeout:.0f} s")
            time.sleep(0.05)
        ready = time.perf_counter() - t0
        time.sleep(settle)  # the first pass of due work (welcomes, outbox) belongs to the start
        peak = _peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return {"ready_s": ready, "rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after ready")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for ready")
    args = parser.parse_args()
    if args.groups < 1:
        parser.error("--groups must be at least 1")
    with tempfile.TemporaryDirectory(prefix="qunfu-memory-") as tmp:
        base = Path(tmp)
        groups = write_folder(base, args.groups, args.port)
        full, empty = base / "full.db", base / "empty.db"
        took = make_database(full, groups, args.members)
        make_database(empty, groups, 0)
        print(
            f"set-up: {args.groups} generated groups (+ the shipped ones), "
            f"{args.members:,} open memberships inserted in {took:.0f} s"
        )
        results: dict[str, list[dict[str, float]]] = {"baseline": [], "full": []}
        for i in range(args.runs):
            for kind, db in (("baseline", empty), ("full", full)):
                r = one_run(base, db, args.port, args.settle, args.timeout)
                results[kind].append(r)
                print(
                    f"run {i + 1} {kind:>8}: ready {r['ready_s']:5.1f} s, "
                    f"peak RSS {r['rss_mb']:6.0f} MB",
                    flush=True,
                )
    med = {
        kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for kind, rs in results.items()
    }
    b, f = med["baseline"], med["full"]
    print(f"median of {args.runs} runs ({args.groups} groups):")
    print(f"  no memberships (baseline): ready {b['ready_s']:.1f} s, peak RSS {b['rss_mb']:.0f} MB")
    print(
        f"  {args.members:,} memberships:    ready {f['ready_s']:.1f} s, "
        f"peak RSS {f['rss_mb']:.0f} MB"
    )
    print(
        f"  cost of the memberships: +{f['rss_mb'] - b['rss_mb']:.0f} MB, "
        f"+{f['ready_s'] - b['ready_s']:.1f} s"
    )
    print(
        f"ratio to goal: peak RSS {f['rss_mb'] / GOAL_RSS_MB:.2f}x of {GOAL_RSS_MB:.0f} MB, "
        f"ready {f['ready_s'] / GOAL_READY_S:.2f}x of {GOAL_READY_S:.0f} s (goal: both < 1)"
    )


if __name__ == "__main__":
    main()
