"""Ops-data loading benchmark: a bank-sized directory read, validated and checked.

    python bench/opsdata_load.py [--groups 20000] [--merchants-per-group 3] [--runs 3] [--broken]

Builds, in a temporary folder, a copy of the shipped campaigns, templates and config.yaml whose
``groups.yaml`` holds ``--groups`` groups and ``merchants.yaml`` three merchants per group
(20,000 groups + 60,000 merchants is about 11 MB of YAML, written in the block style of the
shipped files, comments included). Times, each the median of ``--runs`` runs in this process:

* the fair baseline: PyYAML's C loader (``yaml.CSafeLoader``, libyaml) merely parsing the same
  files into Python data, nothing validated;
* ``load_opsdata``: what the bot and a reload do (parse, validate, cross-check);
* ``check_all``: everything ``qunfu check`` does (that, plus templates and warnings);
* with ``--broken``, a line of the big groups file is broken (an unclosed quote), and
  ``check_all`` is timed on that too (it must report it as fast as it checks the good one);
* with ``--csv``, the same directory with ``groups.csv`` and ``merchants.csv`` instead of the
  two big YAML files: ``load_opsdata`` on it, against the stdlib ``csv`` module merely reading
  those two files (and the rest parsed by the C loader) as its bare baseline.

The ratio (``check_all`` / bare C-loader parse; goal <= 1.0) is printed last. Figures only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CITIES = [
    ("深圳", "南山区", 22.54, 113.93, "cm-li"),
    ("深圳", "福田区", 22.52, 114.05, "cm-wang"),
    ("广州", "天河区", 23.13, 113.33, "cm-huang"),
]
CATEGORIES = ["早餐", "午餐", "晚餐", "电影"]


def make_ops_dir(root: Path, n_groups: int, merchants_per_group: int = 3, seed: int = 7) -> Path:
    """A config.yaml with campaigns/ and templates/ under ``root``; returns the config path.

    The shipped campaigns and templates are copied; ``groups.yaml`` and ``merchants.yaml`` are
    replaced by ``n_groups`` groups and ``merchants_per_group`` merchants per group.
    """
    rnd = random.Random(seed)
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copytree(ROOT / "campaigns", root / "campaigns")
    shutil.copy(ROOT / "config.yaml", root / "config.yaml")
    groups = ["# 福利群目录 / groups directory (generated)\ngroups:\n"]
    merchants = ["# 商户目录 / merchants directory (generated)\nmerchants:\n"]
    for i in range(n_groups):
        city, district, lat0, lon0, manager = CITIES[i % len(CITIES)]
        lat, lon = lat0 + rnd.uniform(-0.2, 0.2), lon0 + rnd.uniform(-0.2, 0.2)
        groups.append(
            f"  - id: g{i:05d}\n"
            f"    name: {city}{district}福利{i}群\n"
            f"    city: {city}\n"
            f"    district: {district}\n"
            f"    location: {{lat: {lat:.5f}, lon: {lon:.5f}, crs: gcj02}}\n"
            f"    capacity: 500\n"
            f"    members: {rnd.randrange(0, 500)}   # 写入时人数\n"
            f"    tags: [office, residential]\n"
            f"    manager: {manager}\n"
        )
        for j in range(merchants_per_group):
            mlat, mlon = lat + rnd.uniform(-0.008, 0.008), lon + rnd.uniform(-0.008, 0.008)
            days = "\n    days: [mon, tue, wed, thu, fri]" if j % 2 else ""
            address = f"\n    address: {district}科技路{j + 1}号" if j == 0 else ""
            merchants.append(
                f"  - id: m{i:05d}-{j}\n"
                f"    name: 商户{i}-{j}\n"
                f"    category: {CATEGORIES[(i + j) % len(CATEGORIES)]}\n"
                f"    location: {{lat: {mlat:.5f}, lon: {mlon:.5f}}}\n"
                f"    offer: 满30减10{days}{address}\n"
            )
    campaigns = root / "campaigns"
    (campaigns / "groups.yaml").write_text("".join(groups), encoding="utf-8")
    (campaigns / "merchants.yaml").write_text("".join(merchants), encoding="utf-8")
    return root / "config.yaml"


def break_groups_file(config: Path) -> None:
    """Open a quote on one line in the middle of ``groups.yaml`` and never close it."""
    path = config.parent / "campaigns" / "groups.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = next(i for i in range(len(lines) // 2, len(lines)) if "name:" in lines[i])
    lines[middle] = lines[middle].replace("name: ", 'name: "', 1)
    path.write_text("".join(lines), encoding="utf-8")


def to_csv(config: Path) -> None:
    """Replace ``groups.yaml`` and ``merchants.yaml`` by the same tables as CSV."""
    import csv

    import yaml

    from bot.opsdata.csvtables import table_rows

    campaigns = config.parent / "campaigns"
    for section in ("groups", "merchants"):
        source = campaigns / f"{section}.yaml"
        items = yaml.load(source.read_text("utf-8"), Loader=yaml.CSafeLoader)[section]
        with (campaigns / f"{section}.csv").open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(table_rows(section, items))
        source.unlink()


def bare_csv(campaigns: Path) -> int:
    """Read every CSV file under ``campaigns`` with the csv module (rows only) and parse the
    YAML files with the C loader; the count of rows."""
    import csv

    bare_parse(campaigns)
    n = 0
    for path in sorted(campaigns.rglob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            n += sum(1 for _ in csv.reader(f))
    return n


def bare_parse(campaigns: Path) -> int:
    """Parse every YAML file under ``campaigns`` with PyYAML's C loader; the count of files."""
    import yaml

    n = 0
    for path in sorted(campaigns.rglob("*.y*ml")):
        with path.open("rb") as f:
            yaml.load(f, Loader=yaml.CSafeLoader)  # noqa: S506 - the safe C loader
        n += 1
    return n


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Build the folders, time each path, print the figures and the ratio last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--merchants-per-group", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--broken", action="store_true", help="also time a broken groups file")
    parser.add_argument("--csv", action="store_true", help="also time the tables as CSV")
    args = parser.parse_args()

    from bot.configfile import check_all, load_settings
    from bot.opsdata.loader import load_opsdata

    with tempfile.TemporaryDirectory() as tmp:
        config = make_ops_dir(Path(tmp) / "good", args.groups, args.merchants_per_group)
        broken = make_ops_dir(Path(tmp) / "broken", args.groups, args.merchants_per_group)
        break_groups_file(broken)
        as_csv = make_ops_dir(Path(tmp) / "csv", args.groups, args.merchants_per_group)
        to_csv(as_csv)
        csv_dir = as_csv.parent / "campaigns"
        settings = load_settings(config)
        size = sum(p.stat().st_size for p in settings.campaigns_dir.rglob("*.yaml"))
        print(
            f"{args.groups} groups, {args.groups * args.merchants_per_group} merchants, "
            f"{size / 1e6:.1f} MB of YAML; median of {args.runs} run(s), each timing every "
            "path in turn (the machine's load swings between runs, not within one)"
        )
        now = datetime.now().astimezone()
        times: dict[str, list[float]] = {}
        problems: list[object] = []
        for _ in range(args.runs):
            run = {
                "bare": _timed(lambda: bare_parse(settings.campaigns_dir)),
                "load": _timed(
                    lambda: load_opsdata(settings.campaigns_dir, settings.templates_dir)
                ),
                "check": _timed(lambda: check_all(config, now)),
            }
            if args.csv:
                run["bare_csv"] = _timed(lambda: bare_csv(csv_dir))
                run["load_csv"] = _timed(
                    lambda: load_opsdata(csv_dir, as_csv.parent / "templates")
                )
            if args.broken:
                problems.clear()
                run["broken"] = _timed(lambda: problems.extend(check_all(broken, now)))
            for name, seconds in run.items():
                times.setdefault(name, []).append(seconds)
            times.setdefault("ratio", []).append(run["check"] / run["bare"])
        med = {name: statistics.median(values) for name, values in times.items()}
        print(f"bare CSafeLoader parse        {med['bare']:8.2f} s")
        print(f"load_opsdata                  {med['load']:8.2f} s")
        print(f"check_all                     {med['check']:8.2f} s")
        if args.csv:
            print(f"bare csv.reader + C parse     {med['bare_csv']:8.2f} s   (tables as CSV)")
            print(f"load_opsdata, tables as CSV   {med['load_csv']:8.2f} s")
        if args.broken:
            print(f"check_all, broken groups file {med['broken']:8.2f} s")
            print(f"  first problem: {next(iter(problems), None)}")
        print(f"ratio check_all / bare parse  {med['ratio']:8.2f}x   (median of per-run ratios)")


if __name__ == "__main__":
    main()
