"""Fan-out benchmark: one meal campaign to N groups, planned, rendered and queued in the outbox.

    python bench/fanout.py [--groups 20000] [--runs 3]

Qunfu's path per occurrence is the live one (``CampaignScheduler``'s fan-out, as ``qunfu run``
does it in its worker thread): claim the occurrence, then for each group its merchants (looked
up in the neighbourhoods computed once per ops-data version), its context, the sandboxed render
with ``StrictUndefined``, and insertion into the SQLite outbox in batches of one transaction
each; last the occurrence is marked fanned out. The baseline, in the same process, is a plain
Jinja render loop of the same template over the very contexts Qunfu built for that occurrence.
Prints the median of ``--runs`` runs, each on a fresh planner (a new ops-data version): the
per-version set-up, then the *rate* ratio (Qunfu groups/s ÷ baseline groups/s; goal >= 0.5)
for the first occurrence of a version and for a later one. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.campaigns import CampaignPlanner  # noqa: E402
from bot.config import OutboxSettings, QuietHours  # noqa: E402
from bot.opsdata.bundle import OpsData  # noqa: E402
from bot.opsdata.models import Campaign, Location, Merchant, Schedule, WelfareGroup  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.scheduling import CampaignScheduler  # noqa: E402
from bot.templating import distance, weekday_zh  # noqa: E402
from db.repositories import CheckpointRepo, OccurrenceRepo  # noqa: E402
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
        schedule=Schedule.model_validate({"at": "11:30", "spread": "20m"}),
        data={"meal": "午餐", "radius_m": 1500},
    )
    return OpsData(
        campaigns={campaign.id: campaign},
        groups=groups,
        merchants=merchants,
        templates={"meal.j2": template},
    )


def plain_render(template_source: str, contexts: list[dict[str, Any]]) -> float:
    """Baseline: plain Jinja, the same template, the same contexts. Returns seconds."""
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["distance"] = distance
    env.filters["weekday_zh"] = weekday_zh
    template = env.from_string(template_source)
    t0 = time.perf_counter()
    for ctx in contexts:
        template.render(ctx).strip()
    return time.perf_counter() - t0


def one_run(ops: OpsData) -> dict[str, float]:
    """A fresh planner (one ops-data version), then two occurrences a week apart.

    Returns seconds for: the version set-up (neighbourhoods), each occurrence's live fan-out
    (plan, render, queue), and the plain render of each occurrence's contexts.
    """
    fire_at = datetime(2026, 12, 1, 11, 30, tzinfo=SHANGHAI)
    campaign = ops.campaigns["lunch-deals"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        clock = VirtualClock(fire_at)
        outbox = Outbox(engine, OutboxSettings(), QuietHours(), clock)
        t0 = time.perf_counter()
        planner = CampaignPlanner(ops, QuietHours())
        planner.prepare()  # what a reload does once per ops-data version
        out["version"] = time.perf_counter() - t0
        scheduler = CampaignScheduler(
            lambda: planner,
            outbox,
            OccurrenceRepo(engine),
            CheckpointRepo(engine),
            clock,
            timedelta(hours=1),
        )
        for name, week in (("first", 0), ("later", 7)):
            at = fire_at + timedelta(days=week)
            clock.set(at)
            t0 = time.perf_counter()
            queued = scheduler._fan_out(planner, campaign.id, at, at, logger)
            out[f"{name} qunfu"] = time.perf_counter() - t0
            contexts = [planner.context(campaign, g, at) for g in planner.targets(campaign)]
            source = ops.templates[campaign.template]
            out[f"{name} plain"] = plain_render(source, [c for c in contexts if c is not None])
            out[f"{name} n"] = queued
        engine.dispose()
    return out


def main() -> None:
    logger.remove()  # per-item debug logging is not what is being measured
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ops = synthetic_ops(args.groups)
    runs = [one_run(ops) for _ in range(args.runs)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    n = int(med("first n"))
    print(f"groups: {args.groups}, sends queued per occurrence: {n}, median of {args.runs} runs")
    print("per ops-data version (targets, send offsets, merchant neighbourhoods): "
          f"{med('version'):.3f} s")
    print(f"{'occurrence':<10}{'plain Jinja':>13}{'Qunfu fan-out':>15}{'rate ratio':>12}")
    ratios = []
    for name in ("first", "later"):
        plain, qunfu = med(f"{name} plain"), med(f"{name} qunfu")
        ratio = statistics.median(r[f"{name} plain"] / r[f"{name} qunfu"] for r in runs)
        ratios.append((name, plain, qunfu, ratio))
        print(f"{name:<10}{plain:>12.3f}s{qunfu:>14.3f}s{ratio:>11.2f}x")
    print("rate ratio = (groups/s of Qunfu: plan + render + queue) / (groups/s of plain Jinja)")
    for name, plain, total, ratio in ratios:
        print(f"{name} occurrence: plain {n / plain:,.0f} groups/s, Qunfu {n / total:,.0f} "
              f"groups/s, ratio {ratio:.2f}x (goal >= 0.5x)")


if __name__ == "__main__":
    main()
