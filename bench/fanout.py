"""Fan-out benchmark: one meal campaign to N groups, rendered and queued in the outbox.

Prints groups per second for the full path (targets, nearby merchants, sandboxed render,
outbox insert in SQLite) and, as the baseline in the same process, a bare Jinja render loop of
the same template with a fixed context. The ratio says what the real work costs on top of
rendering. No assertions: figures only.

    python bench/fanout.py [--groups 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.campaigns import CampaignPlanner  # noqa: E402
from bot.config import OutboxSettings, QuietHours  # noqa: E402
from bot.events import Say, room_conv  # noqa: E402
from bot.opsdata.bundle import OpsData  # noqa: E402
from bot.opsdata.models import Campaign, Location, Merchant, WelfareGroup  # noqa: E402
from bot.outbox import Outbox, OutboxItem  # noqa: E402
from bot.templating import distance  # noqa: E402
from db.session import make_engine, upgrade  # noqa: E402
from scheduler.clock import SHANGHAI, VirtualClock  # noqa: E402

CITIES = [
    ("深圳", 22.54, 114.05),
    ("广州", 23.13, 113.26),
    ("上海", 31.23, 121.47),
    ("北京", 39.90, 116.40),
    ("成都", 30.66, 104.06),
]


def synthetic_ops(n_groups: int, seed: int = 7) -> OpsData:
    """N groups around five cities, each with three lunch merchants within a kilometre."""
    rnd = random.Random(seed)
    groups, merchants = {}, {}
    for i in range(n_groups):
        city, lat0, lon0 = CITIES[i % len(CITIES)]
        lat, lon = lat0 + rnd.uniform(-0.3, 0.3), lon0 + rnd.uniform(-0.3, 0.3)
        g = WelfareGroup(
            id=f"g{i}",
            name=f"{city}福利{i}群",
            city=city,
            district="测试区",
            location=Location(lat=lat, lon=lon),
        )
        groups[g.id] = g
        for j in range(3):
            m = Merchant(
                id=f"m{i}-{j}",
                name=f"{city}美食{i}-{j}",
                category="午餐",
                location=Location(
                    lat=lat + rnd.uniform(-0.005, 0.005), lon=lon + rnd.uniform(-0.005, 0.005)
                ),
                offer="刷信用卡满30减10",
            )
            merchants[m.id] = m
    template = (ROOT / "templates" / "meal.j2").read_text(encoding="utf-8")
    campaign = Campaign(
        id="lunch-deals",
        name="午餐附近美食",
        kind="meal",
        template="meal.j2",
        schedule={"at": "11:30", "spread": "20m"},
        data={"meal": "午餐", "radius_m": 1500},
    )
    return OpsData(
        campaigns={campaign.id: campaign},
        groups=groups,
        merchants=merchants,
        templates={"meal.j2": template},
    )


def bare_render(ops: OpsData, n: int) -> float:
    """Baseline: plain Jinja, same template, one fixed context, n renders. Returns seconds."""
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["distance"] = distance
    template = env.from_string(ops.templates["meal.j2"])
    ctx = {
        "group": {"name": "深圳福利0群"},
        "data": {"meal": "午餐"},
        "merchants": [{"name": "美食", "offer": "满30减10", "distance_m": 300}] * 3,
    }
    t0 = time.perf_counter()
    for _ in range(n):
        template.render(ctx)
    return time.perf_counter() - t0


def full_fanout(ops: OpsData) -> tuple[float, float, int]:
    """Plan, render and enqueue two occurrences (Tuesday, then the next Tuesday) for every group.

    Returns (first seconds, second seconds, queued). The first pays for finding each group's
    merchants; the second finds them in the planner's cache, as every later day does.
    """
    fire_at = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        outbox = Outbox(engine, OutboxSettings(), QuietHours(), VirtualClock(fire_at))
        planner = CampaignPlanner(ops, QuietHours())
        campaign = ops.campaigns["lunch-deals"]
        timings, queued = [], 0
        for week in (0, 7):
            t0 = time.perf_counter()
            at = fire_at + timedelta(days=week)
            items = [
                OutboxItem(
                    key=d.key,
                    action=Say(room_conv(d.group.id), d.text),
                    not_before=d.send_at,
                    campaign_id=campaign.id,
                    group_id=d.group.id,
                    marketing=True,
                )
                for d in planner.deliveries(campaign, at)
            ]
            queued += outbox.enqueue(items)
            timings.append(time.perf_counter() - t0)
        engine.dispose()
    return timings[0], timings[1], queued


def main() -> None:
    logger.remove()  # per-item debug logging is not what is being measured
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    args = parser.parse_args()
    ops = synthetic_ops(args.groups)
    base = bare_render(ops, args.groups)
    first, again, queued = full_fanout(ops)
    n = args.groups
    print(f"groups: {n}, queued over two occurrences: {queued}")
    print(f"{'path':<52}{'seconds':>9}{'groups/s':>10}{'ratio':>8}")
    rows = [
        ("bare Jinja render loop (baseline)", base),
        ("Qunfu: first occurrence (merchant lookup + render + enqueue)", first),
        ("Qunfu: next occurrence (merchants cached)", again),
    ]
    for label, secs in rows:
        print(f"{label:<52}{secs:>9.3f}{n / secs:>10.0f}{secs / base:>7.1f}x")
    print("ratio = time / baseline time, same process, same template")


if __name__ == "__main__":
    main()
