"""The lottery's pure rules: the draw, the seed and the campaign's `data` validation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.lottery.rules import draw, lottery_spec, seed_of
from bot.opsdata.loader import read_opsdata
from scheduler.clock import SHANGHAI

IDS = st.lists(st.text("abcdefu0123456789", min_size=1, max_size=6), max_size=30)
FRI_19 = datetime(2026, 12, 4, 19, 0, tzinfo=SHANGHAI)


@given(people=IDS, order=st.randoms(), winners=st.integers(1, 5))
def test_the_draw_depends_on_who_entered_not_in_which_order(people, order, winners) -> None:
    shuffled = list(people) + list(people)  # duplicates too
    order.shuffle(shuffled)
    seed = seed_of("c", FRI_19, "ab" * 32)
    won = draw(seed, "g1", people, winners)
    assert draw(seed, "g1", shuffled, winners) == won
    assert len(won) == min(winners, len(set(people))) and set(won) <= set(people)


def test_the_seed_changes_with_the_committed_value_and_the_occurrence() -> None:
    base = seed_of("c", FRI_19, "00" * 32)
    assert base != seed_of("c", FRI_19, "01" + "00" * 31)
    assert base != seed_of("c", FRI_19 + timedelta(days=7), "00" * 32)
    assert base == seed_of("c", FRI_19.astimezone(SHANGHAI), "00" * 32)


@pytest.mark.parametrize(
    "draw_at, expected",
    [
        ("48h", datetime(2026, 12, 6, 19, 0, tzinfo=SHANGHAI)),
        ("sun 20:00", datetime(2026, 12, 6, 20, 0, tzinfo=SHANGHAI)),
        ("周五 19:00", datetime(2026, 12, 11, 19, 0, tzinfo=SHANGHAI)),  # strictly after
        ("18:00", datetime(2026, 12, 5, 18, 0, tzinfo=SHANGHAI)),
        (1200, datetime(2026, 12, 4, 20, 0, tzinfo=SHANGHAI)),  # YAML's unquoted 20:00
    ],
)
def test_draw_at_is_counted_from_the_announcement(draw_at: object, expected: datetime) -> None:
    spec = lottery_spec({"keyword": "抽奖", "draw_at": draw_at})
    assert spec is not None and spec.draw_at(FRI_19) == expected


@pytest.mark.parametrize(
    "data, message",
    [
        ({"keyword": "抽奖"}, "needs `data.draw_at`"),
        ({"keyword": "抽奖", "draw_at": "soon"}, "`data.draw_at` must be"),
        ({"keyword": "抽奖", "draw_at": "xyz 20:00"}, "not a weekday"),
        ({"keyword": "抽奖", "draw_at": "40d"}, "at most 30d"),
        ({"keyword": "退订", "draw_at": "2h"}, "is a chat command"),
        ({"keyword": "抽 奖", "draw_at": "2h"}, "one word"),
        ({"keyword": "抽奖", "draw_at": "2h", "winners": 0}, "`data.winners`"),
        ({"draw_at": "2h"}, "needs `data.keyword`"),
    ],
)
def test_bad_lottery_data_says_what_is_expected(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        lottery_spec(data)


def test_a_bad_draw_at_is_located_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("hi")
    (tmp_path / "campaigns" / "l.yaml").write_text(
        "id: l\nname: 抽奖\nkind: lottery\nschedule: {at: '19:00'}\ntemplate: t.j2\n"
        "data:\n  keyword: 抽奖\n  draw_at: later\n",
        encoding="utf-8",
    )
    problems = read_opsdata(tmp_path / "campaigns", tmp_path / "templates").problems
    assert any(":8:3:" in str(p) and "draw_at" in str(p) for p in problems), problems


def test_the_announcements_draw_time_comes_from_draw_at() -> None:
    from bot.lottery.rules import lottery_context

    ctx = lottery_context({"keyword": "抽奖", "draw_at": "sat 20:00"}, FRI_19)
    assert ctx["keyword"] == "抽奖"
    assert ctx["draw_at"] == datetime(2026, 12, 5, 20, 0, tzinfo=SHANGHAI)
    assert ctx["draw_time"] == "12月5日（周六）20:00"
    assert lottery_context({"how": "x"}, FRI_19) == {
        "keyword": "",
        "draw_at": None,
        "draw_time": "",
    }


def test_the_shipped_announcement_says_how_to_enter_once_and_when_draw_at_draws() -> None:
    from bot.campaigns import CampaignPlanner
    from bot.config import QuietHours
    from bot.opsdata import load_opsdata
    from tests.support import ROOT

    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    planner = CampaignPlanner(ops, QuietHours())
    (d,) = planner.deliveries(
        ops.campaigns["friday-lottery"], FRI_19, [ops.groups["sz-nanshan-kjy"]]
    )
    assert d.text.count("抽奖」即可报名") == 1 and "“抽奖”" not in d.text, d.text
    assert "开奖时间：12月6日（周日）20:00" in d.text


def test_a_draw_time_text_that_disagrees_with_draw_at_is_a_warning(tmp_path: Path) -> None:
    from bot.campaign_warnings import campaign_warnings
    from bot.opsdata import load_opsdata
    from tests.support import bot_settings, copy_ops

    base = copy_ops(tmp_path)
    path = base / "campaigns" / "lottery.yaml"
    text = path.read_text(encoding="utf-8").replace('"sun 20:00"', '"sat 20:00"')
    path.write_text(text + "  draw_time: 周日 20:00\n", encoding="utf-8")
    ops = load_opsdata(base / "campaigns", base / "templates")
    found = campaign_warnings(ops, bot_settings(base), FRI_19 - timedelta(days=3))
    (w,) = [p for p in found if "draw_time" in p.message or "draw_at" in p.message]
    assert w.line == text.count("\n") + 1 and w.col == 14
    assert "says '周日 20:00', but the draw happens at draw_at 'sat 20:00'" in w.message
    assert "12月5日（周六）20:00" in w.message
