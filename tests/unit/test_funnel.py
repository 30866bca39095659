"""The entry funnel: counting stages per channel, retention after 7 days, conversion."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.entry.funnel import day_bounds, format_table, tally, total
from db.entry_repositories import VisitFacts
from scheduler.clock import SHANGHAI

T0 = datetime(2026, 12, 1, 10, tzinfo=SHANGHAI)
NAMES = {"wx-menu": "公众号菜单", "sms-alert": "动账提醒", "referral": "好友推荐"}


def visit(
    channel: str,
    stages: int,
    *,
    left_after: timedelta | None = None,
    joined_at: datetime | None = None,
) -> VisitFacts:
    """A visit that got ``stages`` far: 1 visited, 2 located, 3 chosen, 4 joined."""
    joined = (joined_at or T0 + timedelta(minutes=5)) if stages >= 4 else None
    return VisitFacts(
        channel,
        T0,
        T0 if stages >= 2 else None,
        T0 if stages >= 3 else None,
        joined,
        joined + left_after if joined and left_after is not None else None,
    )


def test_each_stage_counts_the_visits_that_reached_it() -> None:
    facts = [
        visit("wx-menu", 1),
        visit("wx-menu", 2),
        visit("wx-menu", 3),
        visit("wx-menu", 4),
        visit("sms-alert", 2),
    ]
    rows = {r.channel: r for r in tally(facts, T0 + timedelta(days=1), NAMES)}
    wx = rows["wx-menu"]
    assert (wx.visits, wx.located, wx.chosen, wx.joined) == (4, 3, 2, 1)
    assert wx.step_conversion() == {
        "located": 0.75,
        "chosen": 0.6667,
        "joined": 0.5,
        "retained": None,
    }
    assert wx.overall() == 0.25
    assert (rows["sms-alert"].visits, rows["sms-alert"].chosen) == (1, 0)


def test_every_configured_channel_is_listed_in_order_and_unknown_ones_after() -> None:
    rows = tally([visit("old-channel", 1)], T0, NAMES)
    assert [r.channel for r in rows] == ["wx-menu", "sms-alert", "referral", "old-channel"]
    assert rows[0].visits == 0 and rows[0].step_conversion()["located"] is None
    assert rows[-1].name == "old-channel"


def test_retention_counts_only_joins_at_least_7_days_old() -> None:
    facts = [
        visit("wx-menu", 4),  # stayed
        visit("wx-menu", 4, left_after=timedelta(days=2)),  # left early
        visit("wx-menu", 4, left_after=timedelta(days=8)),  # left after the 7 days: retained
        visit("wx-menu", 4, joined_at=T0 + timedelta(days=5)),  # joined late: not due yet
    ]
    (wx, *_) = tally(facts, T0 + timedelta(days=8), NAMES)
    assert (wx.joined, wx.retention_due, wx.retained) == (4, 3, 2)
    assert wx.step_conversion()["retained"] == 0.6667


def test_exactly_seven_days_counts_as_retained() -> None:
    joined = T0 + timedelta(minutes=5)
    (wx, *_) = tally(
        [visit("wx-menu", 4, left_after=timedelta(days=7))], joined + timedelta(days=7), NAMES
    )
    assert (wx.retention_due, wx.retained) == (1, 1)


def test_total_and_table_and_json() -> None:
    rows = tally([visit("wx-menu", 4), visit("referral", 2)], T0, NAMES)
    all_ = total(rows)
    assert (all_.visits, all_.located, all_.joined) == (2, 2, 1)
    table = format_table(rows)
    assert "公众号菜单(wx-menu)" in table and "合计" in table
    assert rows[0].as_json()["conversion"]["joined"] == 1.0


def test_days_are_asia_shanghai_days() -> None:
    start, end = day_bounds(date(2026, 12, 1), date(2026, 12, 7))
    assert start.isoformat() == "2026-12-01T00:00:00+08:00"
    assert end - start == timedelta(days=7)
