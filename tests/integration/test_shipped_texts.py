"""The shipped sample campaigns and member-facing texts say what the bot really does.

Each test pins one finding of the texts review: lunch follows the work calendar, the bill
reminder does not claim everyone's statement is out, perk calendar lines read without repeats,
and the help and welcome texts promise what opting out and tickets really do.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path

from typer.testing import CliRunner

import bot.replies
from bot.cli import app
from bot.opsdata import load_opsdata
from bot.perks import perk_calendar
from scheduler.clock import SHANGHAI
from tests.support import ROOT, bot_settings, copy_ops, make_rig

runner = CliRunner()
CONFIG = str(ROOT / "config.yaml")
GROUP = "sz-nanshan-kjy"


def preview(config: str, day: str) -> list[dict[str, str]]:
    """``qunfu preview --json`` for the sample group on one day."""
    result = runner.invoke(
        app, ["preview", "--config", config, "--group", GROUP, "--from", day, "--json"]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def campaigns_on(config: str, day: str) -> set[str]:
    return {row["campaign"] for row in preview(config, day)}


def calendar_lines() -> list[str]:
    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    return [p.text for p in perk_calendar(ops, ops.groups[GROUP], date(2026, 12, 1))]


def test_lunch_is_not_pushed_on_new_year_s_day_a_friday() -> None:
    # 1 January 2027 is a Friday and a public holiday: the "工作日" lunch offers stay silent.
    assert "lunch-deals" not in campaigns_on(CONFIG, "2027-01-01")
    assert "lunch-deals" in campaigns_on(CONFIG, "2027-01-04")  # the Monday after


def test_lunch_goes_out_on_a_make_up_workday_saturday(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    shutil.copy(ROOT / "config.yaml", base / "config.yaml")
    (base / "campaigns" / "calendar.yaml").write_text(
        "calendar:\n  holidays: []\n  workdays: [2027-02-20]\n", encoding="utf-8"
    )
    config = str(base / "config.yaml")
    assert "lunch-deals" in campaigns_on(config, "2027-02-20")  # 调休上班的周六
    assert "lunch-deals" not in campaigns_on(config, "2027-02-27")  # a plain Saturday


def test_the_perk_calendar_reads_without_repeats() -> None:
    lines = calendar_lines()
    assert "工作日 08:00 早餐优惠" in lines
    assert "工作日 11:30 午餐附近美食" in lines  # as the breakfast line, no longer 周一至周五
    assert "周三 10:00 观影特惠" in lines
    assert "周五 19:00 联名抽奖" in lines
    for line in lines:
        days, _time, name = line.split(" ", 2)
        assert days not in name, line  # "周三 10:00 周三…" reads as a stutter
    assert not any("半价" in line for line in lines)  # the cinema offers are 立减 / 特价


def test_the_monthly_bill_does_not_claim_every_statement_is_out() -> None:
    rows = [r for r in preview(CONFIG, "2026-12-05") if r["campaign"] == "monthly-bill"]
    [text] = [r["text"] for r in rows]
    assert "本月账单已出" not in text
    assert "账单日福利来啦" in text and "如您的本期账单已出" in text
    assert "手续费8折" in text


def test_the_holiday_perk_says_节日期间_once() -> None:
    [row] = [r for r in preview(CONFIG, "2027-01-01") if r["campaign"] == "holiday-greetings"]
    assert row["text"].count("节日期间") == 1, row["text"]


def test_the_welcome_tip_and_the_help_text_promise_the_same_ticket_path() -> None:
    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    tip = ops.campaigns["welcome"].data["tip"]
    assert "答不了的我会转给本群客户经理" in tip and "私信" not in tip
    # The old "please message your manager" reply is gone, not kept as dead code.
    assert not hasattr(bot.replies, "no_answer")


async def test_the_help_text_says_what_opting_out_really_stops(tmp_path: Path) -> None:
    settings = bot_settings(ROOT, database={"url": f"sqlite:///{tmp_path}/q.db"})
    start = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
    rig = make_rig(settings, start)
    rig.gateway.add_contact("u1", "张三")
    rig.gateway.say("u1", "帮助")
    await rig.advance_to(datetime(2026, 12, 1, 10, 1, tzinfo=SHANGHAI))
    [help_text] = [r["text"] for r in rig.records() if r["to"] == "contact:u1"]
    assert "关闭或恢复优惠推送" not in help_text  # group posts do not stop
    assert "退订：不再@您或私信推送活动，也不能参加抽奖" in help_text
    assert "订阅：恢复@您、私信推送和抽奖" in help_text
