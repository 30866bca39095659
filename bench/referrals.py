"""Benchmark the referral webhook handler against bare inserts of the same rows.

    python bench/referrals.py [--events 100000] [--referrers 20000] [--runs 3] [--url URL]

Each run takes a fresh database (SQLite in a temp dir, or ``--url``, whose referral tables are
emptied) with one referral code per referrer, and the same pre-signed events: ~10 % name an
applicant another referrer already brought (they must not count twice), ~2 % are replays of an
earlier ``event_id``, ~5 % are of a type that does not qualify; they are delivered by
``occurred_at`` with one in twenty swapped with its neighbour (late deliveries).

- **handler**: every body through ``ReferralIntake.receive`` (signature check, JSON parse,
  referral-code check, ledger transaction with tier grants), as the endpoint calls it;
- **baseline**: the same rows inserted into ``referral_event`` one transaction each (a webhook
  commits before it answers), with SQLAlchemy Core, in the same process.

Prints events per second for both, the ratio handler/baseline per run and the median ratio
(goal ≥ 0.3). The bench asserts zero double rewards: no (referrer, tier) twice, each referrer's
tiers exactly those its counted friends reach, no applicant counted twice, and a second delivery
of every event changes nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from loguru import logger  # noqa: E402

from bot.entry.referral_codes import ReferralCodes  # noqa: E402
from bot.opsdata.models import ReferralProgramme  # noqa: E402
from bot.referrals import Burst, ReferralIntake, ReferralLedger  # noqa: E402
from bot.referrals.signatures import sign  # noqa: E402
from db.entry_repositories import ReferralCodeRepo  # noqa: E402
from db.referral_repositories import EVENTS, HISTORY, REWARDS  # noqa: E402
from db.session import make_engine, upgrade  # noqa: E402
from scheduler.clock import VirtualClock  # noqa: E402

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
KEY = b"bench-secret"
PROGRAMME = ReferralProgramme.model_validate(
    {
        "tiers": [
            {"count": 1, "reward": "咖啡券"},
            {"count": 3, "reward": "100 元还款金"},
            {"count": 5, "reward": "300 元还款金"},
        ],
        "window_days": 90,
        "qualifying_event": "application_approved",
        "caps": {"per_referrer": 20, "per_referrer_per_month": 10},
    }
)
Row = dict[str, object]


def make_events(n: int, referrers: list[tuple[str, str]], seed: int) -> list[Row]:
    """``n`` events (dicts of the JSON fields plus ``_referrer``), shuffled."""
    rng = random.Random(seed)
    events: list[Row] = []
    for i in range(n):
        person, code = rng.choice(referrers)
        roll = rng.random()
        if roll < 0.02 and events:
            events.append(dict(rng.choice(events)))  # a replay of an earlier delivery
            continue
        applicant = str(rng.choice(events)["applicant"]) if roll < 0.12 and events else f"hash-{i}"
        events.append(
            {
                "event_id": f"ev-{i}",
                "type": "application_submitted" if roll > 0.95 else "application_approved",
                "referral_code": code,
                "applicant": applicant,
                "occurred_at": (T0 - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))).isoformat(),
                "_referrer": person,
            }
        )
    # Partners deliver roughly in the order things happen: by occurred_at, with one event in
    # twenty swapped with a neighbour (late deliveries that the ledger must recount).
    events.sort(key=lambda e: str(e["occurred_at"]))
    for i in range(len(events) - 1):
        if rng.random() < 0.05:
            events[i], events[i + 1] = events[i + 1], events[i]
    return events


def fresh(url: str | None, tmp: Path, name: str) -> sa.Engine:
    target = url or f"sqlite:///{tmp / name}"
    upgrade(target)
    engine = make_engine(target)
    with engine.begin() as conn:
        for table in (HISTORY, REWARDS, EVENTS):
            conn.execute(sa.delete(table))
    return engine


def run_handler(engine: sa.Engine, events: list[Row], codes: dict[str, str]) -> float:
    clock = VirtualClock(T0)
    ledger = ReferralLedger(engine, lambda: PROGRAMME, clock, Burst(1000, timedelta(minutes=1)))
    repo = ReferralCodeRepo(engine)
    code_service = ReferralCodes(repo, b"bench-code-secret")
    for person, code in codes.items():
        repo.add(code, person, T0)
    intake = ReferralIntake(ledger, code_service, lambda: [KEY], clock, timedelta(seconds=300))
    bodies = []
    for e in events:
        body = json.dumps({k: v for k, v in e.items() if k != "_referrer"}).encode()
        bodies.append((body, sign(KEY, body, T0)))
    started = time.perf_counter()
    for body, header in bodies:
        answer = intake.receive(body, header)
        assert answer.status == 200, answer.payload
    elapsed = time.perf_counter() - started
    check_no_double_rewards(engine, intake, bodies)
    return len(events) / elapsed


def run_baseline(engine: sa.Engine, events: list[Row]) -> float:
    rows = [
        {
            "event_id": f"{e['event_id']}#{i}",  # replays too: a bare insert knows no idempotency
            "type": e["type"],
            "referral_code": e["referral_code"],
            "referrer_id": e["_referrer"],
            "applicant": e["applicant"],
            "referrer_applicant": None,
            "occurred_at": datetime.fromisoformat(str(e["occurred_at"])),
            "received_at": T0,
            "source": "webhook",
            "wins": False,
            "outcome": "",
        }
        for i, e in enumerate(events)
    ]
    stmt = EVENTS.insert()
    started = time.perf_counter()
    for row in rows:
        with engine.begin() as conn:
            conn.execute(stmt, row)
    return len(rows) / (time.perf_counter() - started)


def check_no_double_rewards(
    engine: sa.Engine, intake: ReferralIntake, bodies: list[tuple[bytes, str]]
) -> None:
    """Zero double rewards, checked against the stored events, then under a full replay."""
    with engine.connect() as conn:
        rewards = [(r.referrer_id, r.tier) for r in conn.execute(sa.select(REWARDS))]
        counted = Counter(
            r.referrer_id
            for r in conn.execute(
                sa.select(EVENTS.c.referrer_id).where(EVENTS.c.outcome == "counted")
            )
        )
        applicants = Counter(
            r.applicant
            for r in conn.execute(
                sa.select(EVENTS.c.applicant).where(EVENTS.c.outcome == "counted")
            )
        )
    assert len(rewards) == len(set(rewards)), "a tier was granted twice"
    assert max(applicants.values(), default=1) == 1, "an applicant counted twice"
    reached = {(r, t.count) for r, n in counted.items() for t in PROGRAMME.tiers if t.count <= n}
    assert set(rewards) == reached, "rewards differ from the tiers the counted friends reach"
    for body, header in bodies[:: max(1, len(bodies) // 2000)]:
        assert intake.receive(body, header).payload.get("duplicate") is True
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(REWARDS)).scalar_one() == len(
            rewards
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--referrers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    logger.remove()
    rng = random.Random(7)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    referrers = [
        (f"m{i}", "".join(rng.choice(alphabet) for _ in range(8)) + "-" + "A" * 8)
        for i in range(args.referrers)
    ]
    # Codes are verified by MAC: make each one valid for the bench's code secret.
    service = ReferralCodes(ReferralCodeRepo(None), b"bench-code-secret")  # type: ignore[arg-type]
    referrers = [(p, f"{c[:8]}-{service._mac(c[:8])}") for p, c in referrers]
    codes = dict(referrers)
    ratios = []
    for run in range(args.runs):
        events = make_events(args.events, referrers, seed=run)
        with tempfile.TemporaryDirectory(prefix="qunfu-bench-") as tmp:
            base = run_baseline(fresh(args.url, Path(tmp), "base.db"), events)
            handled = run_handler(fresh(args.url, Path(tmp), "handler.db"), events, codes)
        ratios.append(handled / base)
        print(
            f"run {run + 1}: handler {handled:,.0f} events/s, bare inserts {base:,.0f} rows/s, "
            f"ratio {handled / base:.2f}x"
        )
    print(f"median ratio over {args.runs} runs: {statistics.median(ratios):.2f}x (goal >= 0.3x)")


if __name__ == "__main__":
    main()
