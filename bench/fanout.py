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
from datetime import datetime
from pathlib import Path

from jinja2 import Environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.campaigns import CampaignPlanner  # noqa: E402
from bot.config import OutboxSettings, QuietHours  # noqa: E402
from bot.events import Say, room_conv  # noqa: E402
from bot.opsdata.bundle import OpsData  # noqa: E402
from bot.opsdata.models import Campaign, Location, Merchant, WelfareGroup  # noqa: E402
from bot.outbox import Outbox, OutboxItem  # noqa: E402
from db.session import make_engine, upgrade  # noqa: E402
from scheduler.clock import SHANGHAI, VirtualClock  # noqa: E402

CITIES = [("深圳", 22.54, 114.05), ("广州", 23.13, 113.26), ("上海", 31.23, 121.47),
          ("北京", 39.90, 116.40), ("成都", 30.66, 104.06)]


def synthetic_ops(n_groups: int, seed: int = 7) -> OpsData:
    """N groups around five cities, each with three lunch merchants within a kilometre."""
    rnd = random.Random(seed)
    groups, merchants = {}, {}
    for i in range(n_groups):
        city, lat0, lon0 = CITIES[i % len(CITIES)]
        lat, lon = lat0 + rnd.uniform(-0.3, 0.3), lon0 + rnd.uniform(-0.3, 0.3)
        g = WelfareGroup(id=f"g{i}", name=f"{city}福利{i}群", city=city, district="测试区",
                         location=Location(lat=lat, lon=lon))
        groups[g.id] = g
        for j in range(3):
            m = Merchant(id=f"m{i}-{j}", name=f"{city}美食{i}-{j}", category="午餐",
                         location=Location(lat=lat + rnd.uniform(-0.005, 0.005),
                                           lon=lon + rnd.uniform(-0.005, 0.005)),
                         offer="刷信用卡满30减10")
            merchants[m.id] = m
    template = (ROOT / "templates" / "meal.j2").read_text(encoding="utf-8")
    campaign = Campaign(id="lunch-deals", name="午餐附近美食", kind="meal", template="meal.j2",
                        schedule={"at": "11:30", "spread": "20m"},
                        data={"meal": "午餐", "radius_m": 1500})
    return OpsData(campaigns={campaign.id: campaign}, groups=groups, merchants=merchants,
                   templates={"meal.j2": template})


def bare_render(ops: OpsData, n: int) -> float:
    """Baseline: plain Jinja, same template, one fixed context, n renders. Returns seconds."""
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        ops.templates["meal.j2"])
    ctx = {"group": {"name": "深圳福利0群"}, "data": {"meal": "午餐"},
           "merchants": [{"name": "美食", "offer": "满30减10", "distance_m": 300}] * 3}
    template.environment.filters["distance"] = lambda m: f"{m}米"
    t0 = time.perf_counter()
    for _ in range(n):
        template.render(ctx)
    return time.perf_counter() - t0


def full_fanout(ops: OpsData) -> tuple[float, int]:
    """Plan, render and enqueue one occurrence for every group. Returns (seconds, queued)."""
    fire_at = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        outbox = Outbox(engine, OutboxSettings(), QuietHours(), VirtualClock(fire_at))
        t0 = time.perf_counter()
        planner = CampaignPlanner(ops, QuietHours())
        campaign = ops.campaigns["lunch-deals"]
        deliveries = planner.deliveries(campaign, fire_at)
        items = [OutboxItem(key=d.key, action=Say(room_conv(d.group.id), d.text),
                            not_before=d.send_at, campaign_id=campaign.id, group_id=d.group.id,
                            marketing=True) for d in deliveries]
        queued = outbox.enqueue(items)
        elapsed = time.perf_counter() - t0
        engine.dispose()
    return elapsed, queued


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    args = parser.parse_args()
    ops = synthetic_ops(args.groups)
    base = bare_render(ops, args.groups)
    full, queued = full_fanout(ops)
    print(f"groups: {args.groups}, queued: {queued}")
    print(f"{'path':<40}{'seconds':>10}{'groups/s':>12}")
    print(f"{'bare Jinja render (baseline)':<40}{base:>10.3f}{args.groups / base:>12.0f}")
    print(f"{'plan + render + enqueue (Qunfu)':<40}{full:>10.3f}{args.groups / full:>12.0f}")
    print(f"ratio: qunfu/baseline time = {full / base:.2f}x "
          f"(throughput {base / full:.2f} of bare rendering)")


if __name__ == "__main__":
    main()
