"""`qunfu explain`, the `qunfu preview` summary and `--group`, `qunfu check` warnings (issue 7)."""

from __future__ import annotations

import json
import random
import shutil
from datetime import date, timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot.campaigns import CampaignPlanner
from bot.cli import app
from bot.config import QuietHours
from bot.diagnosis import midnight
from bot.opsdata import load_opsdata
from tests.support import ROOT, copy_ops

runner = CliRunner()
CONFIG = str(ROOT / "config.yaml")
SAMPLE_GROUPS = sorted(
    g.id for g in load_opsdata(ROOT / "campaigns", ROOT / "templates").groups.values()
)


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args))


def preview_json(*args: str) -> list[dict]:
    result = invoke("preview", "--config", CONFIG, "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- preview ------------------------------------------------------------------------------------


def test_preview_starts_with_a_summary_of_sends_per_campaign() -> None:
    result = invoke("preview", "--config", CONFIG, "--from", "2026-12-02")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    # Wednesday 2 December 2026: 15 groups get each of lunch, dinner, check-in and cinema; the
    # 10 office and campus groups get breakfast.
    assert first == (
        "70 sends: cinema-wednesday 15, daily-checkin 15, dinner-deals 15, lunch-deals 15, "
        "breakfast-deals 10"
    )


def test_preview_json_keeps_the_summary_off_stdout() -> None:
    result = invoke("preview", "--config", CONFIG, "--from", "2026-12-02", "--json")
    assert result.exit_code == 0
    assert all(json.loads(line)["campaign"] for line in result.stdout.splitlines())
    assert result.stderr.splitlines()[0].startswith("70 sends: cinema-wednesday 15")


def test_a_groups_times_are_the_same_with_or_without_group() -> None:
    full = preview_json("--from", "2026-12-01", "--days", "3")
    for group in SAMPLE_GROUPS:
        mine = [(r["at"], r["campaign"]) for r in full if r["group"] == group]
        alone = [
            (r["at"], r["campaign"])
            for r in preview_json("--from", "2026-12-01", "--days", "3", "--group", group)
        ]
        assert alone == mine, group
    # The observation of issue 7: 09:09 in the full preview and in the live bot, not 09:00.
    xjh = [
        r["at"] for r in full if r["group"] == "sh-xuhui-xjh" and r["campaign"] == "daily-checkin"
    ]
    assert xjh[0] == "2026-12-01T09:09:20+08:00"


def test_send_times_do_not_depend_on_the_filter_on_a_generated_directory(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rnd = random.Random(11)
    lines = ["groups:"]
    for i in range(120):
        lat, lon = 22.5 + rnd.uniform(-0.1, 0.1), 113.95 + rnd.uniform(-0.1, 0.1)
        tag = rnd.choice(["office", "campus", "mall"])
        lines.append(
            f"  - {{id: g{i:03d}, name: 群{i}, city: 深圳, district: 南山区, "
            f"location: {{lat: {lat:.5f}, lon: {lon:.5f}}}, tags: [{tag}]}}"
        )
    (base / "campaigns" / "groups.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (base / "campaigns" / "managers.yaml").unlink()
    ops = load_opsdata(base / "campaigns", base / "templates")
    planner = CampaignPlanner(ops, QuietHours())
    start = midnight(date(2026, 12, 2))
    end = start + timedelta(days=1)
    full = [(d.send_at, d.campaign.id, d.group.id) for d in planner.plan(start, end)]
    assert len(full) > 150
    for group in sorted(ops.groups):
        alone = [(d.send_at, d.campaign.id, d.group.id) for d in planner.plan(start, end, group)]
        assert alone == [row for row in full if row[2] == group], group


# --- explain ------------------------------------------------------------------------------------


def test_explain_says_why_not_on_a_saturday() -> None:
    result = invoke(
        "explain", "breakfast-deals", "--config", CONFIG, "--date", "2026-12-05",
        "--group", "sz-nanshan-kjy",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "breakfast-deals · 早餐优惠 (meal) on 2026-12-05, Saturday",
        "no fire time on this day: not a workday (workdays_only: true)",
        "sends to 0 of 1 group(s) shown (1 targeted)",
        "sz-nanshan-kjy  深圳南山科技园福利1群  no: not a workday (workdays_only: true)",
    ]


def test_explain_lists_every_group_with_its_time_or_reason() -> None:
    result = invoke("explain", "breakfast-deals", "--config", CONFIG, "--date", "2026-12-02")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "fires at 08:00, spread over 10m"
    assert lines[2] == "sends to 10 of 15 group(s) shown (10 targeted)"
    assert (
        "sz-luohu-dm  深圳罗湖东门福利群  no: not targeted: its tags [mall, residential] share "
        "none with targets.tags [office, campus]"
    ) in lines
    assert "sz-nanshan-kjy  深圳南山科技园福利1群  sends at 08:07" in lines


def test_explain_json_matches_preview_for_every_group() -> None:
    result = invoke("explain", "lunch-deals", "--config", CONFIG, "--date", "2026-12-02", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["group"] for r in rows] == SAMPLE_GROUPS
    assert set(rows[0]) == {"campaign", "date", "group", "targeted", "sends", "at", "reasons"}
    sent = {
        r["group"]: [r["at"]]
        for r in preview_json("--from", "2026-12-02")
        if r["campaign"] == "lunch-deals"
    }
    assert {r["group"]: r["at"] for r in rows if r["sends"]} == sent


def test_explain_names_the_nearest_merchant_beyond_the_radius(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    shutil.copy(ROOT / "config.yaml", base / "config.yaml")
    (base / "campaigns" / "tiny.yaml").write_text(
        "id: tiny-lunch\nname: 午餐\nkind: meal\nschedule: {at: '11:30'}\ntemplate: meal.j2\n"
        "data: {meal: 午餐, radius_m: 50}\n",
        encoding="utf-8",
    )
    result = invoke(
        "explain", "tiny-lunch", "--config", str(base / "config.yaml"), "--date", "2026-12-02",
        "--group", "sz-nanshan-kjy", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["sends"] is False and row["at"] == []
    (reason,) = row["reasons"]
    assert reason["code"] == "no_merchant_near"
    assert reason["message"].startswith("no merchant of category 午餐 within 50 m; the nearest is ")


def test_explain_refuses_unknown_names_and_dates() -> None:
    unknown = invoke("explain", "lunch-deal", "--config", CONFIG)
    assert unknown.exit_code == 1
    assert "unknown campaign 'lunch-deal' (did you mean 'lunch-deals'?)" in unknown.stderr
    group = invoke("explain", "lunch-deals", "--config", CONFIG, "--group", "sz-nanshan")
    assert group.exit_code == 1 and "unknown group 'sz-nanshan'" in group.stderr
    bad = invoke("explain", "lunch-deals", "--config", CONFIG, "--date", "2026-02-30")
    assert bad.exit_code == 1 and "--date: expected a date as YYYY-MM-DD" in bad.stderr


# --- check --------------------------------------------------------------------------------------


def test_check_prints_warnings_and_exits_1_only_with_strict(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    shutil.copy(ROOT / "config.yaml", base / "config.yaml")
    (base / "campaigns" / "dawn.yaml").write_text(
        "id: dawn\nname: 早\nkind: daily\nschedule: {at: '07:30'}\ntemplate: daily.j2\n"
        "data: {perk: x, app_entry: y}\n",
        encoding="utf-8",
    )
    result = invoke("check", "--config", str(base / "config.yaml"))
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if "dawn.yaml" in x]
    assert line.endswith(
        "dawn.yaml:4:16: warning: 07:30 is inside the quiet hours (21:30-08:00, config "
        "quiet_hours): marketing sends at that time are skipped"
    )
    assert invoke("check", "--config", str(base / "config.yaml"), "--strict").exit_code == 1


def test_the_shipped_data_is_warning_free() -> None:
    result = invoke("check", "--config", CONFIG, "--strict")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output
