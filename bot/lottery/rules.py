"""The lottery's rules as pure functions: the campaign's ``data``, the seed and the draw.

A draw is auditable because it depends on nothing but stored values: the seed is a SHA-256 of
the campaign id, the occurrence and a random value committed when the announcement was queued
(before anyone entered), and each entrant's ticket is a SHA-256 of the seed, the group and the
member id. The winners are the lowest tickets. No library RNG is involved, so a re-run on any
Python version (``qunfu lottery verify``) gives the same winners.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bot.opsdata.models import WEEKDAY_ZH, WEEKDAYS
from scheduler.clock import SHANGHAI
from scheduler.durations import parse_duration, parse_time_of_day

__all__ = [
    "LotterySpec",
    "draw",
    "draw_time_text",
    "draw_weekday_and_time",
    "lottery_context",
    "lottery_spec",
    "seed_of",
    "ticket",
]

KEYWORD_MAX = 20
LONGEST_WAIT = timedelta(days=30)
WINNERS_MAX = 100
# Words other handlers answer: a keyword equal to one would never reach the lottery.
RESERVED = ("我要进群", "我的邀请", "邀请排行", "退订", "订阅")
_DAYS = {
    **{d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{d: i for i, d in enumerate(("周一", "周二", "周三", "周四", "周五", "周六", "周日"))},
}
_DAY_TIME = re.compile(r"^(\S+)\s+(\S+)$")
_SEED_VERSION = "qunfu-lottery-v1"


@dataclass(frozen=True)
class LotterySpec:
    """What a lottery campaign's ``data`` says: keyword, draw time, winners and prizes."""

    keyword: str
    winners: int
    prizes: tuple[str, ...]
    draw_after: timedelta | None = None
    draw_weekday: int | None = None
    draw_time: time | None = None

    def draw_at(self, occurrence: datetime) -> datetime:
        """When the round announced at ``occurrence`` is drawn (aware, Asia/Shanghai)."""
        local = occurrence.astimezone(SHANGHAI)
        if self.draw_after is not None:
            return local + self.draw_after
        assert self.draw_time is not None
        day = local.date()
        for _ in range(8):
            candidate = datetime.combine(day, self.draw_time, SHANGHAI)
            if candidate > local and (
                self.draw_weekday is None or candidate.weekday() == self.draw_weekday
            ):
                return candidate
            day += timedelta(days=1)
        raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover

    def prize(self, rank: int) -> str:
        """The prize of the ``rank``-th winner (1-based); the last prize repeats."""
        if not self.prizes:
            return ""
        return self.prizes[min(rank, len(self.prizes)) - 1]


def lottery_spec(data: Mapping[str, Any]) -> LotterySpec | None:
    """The lottery a campaign's ``data`` declares; None when it names no ``keyword`` (the
    campaign only announces). Raises ValueError naming the key (``data.draw_at``) otherwise."""
    keyword = data.get("keyword")
    if keyword is None:
        if "draw_at" in data:
            raise ValueError("`data.draw_at` needs `data.keyword`: the word members send to enter")
        return None
    if not isinstance(keyword, str) or not keyword.strip():
        raise ValueError("`data.keyword` must be text: the word members send to enter, e.g. 抽奖")
    keyword = keyword.strip()
    if len(keyword) > KEYWORD_MAX or any(c.isspace() for c in keyword):
        raise ValueError(f"`data.keyword` must be one word of at most {KEYWORD_MAX} characters")
    if keyword in RESERVED:
        raise ValueError(f"`data.keyword` {keyword!r} is a chat command; choose another word")
    prizes = data.get("prizes", [])
    if isinstance(prizes, str):
        prizes = [prizes]
    if not isinstance(prizes, list) or not all(isinstance(p, str) for p in prizes):
        raise ValueError("`data.prizes` must be a list of prize names")
    winners = data.get("winners", len(prizes) or 1)
    if isinstance(winners, bool) or not isinstance(winners, int) or not 1 <= winners <= WINNERS_MAX:
        raise ValueError(f"`data.winners` must be a whole number from 1 to {WINNERS_MAX}")
    after, weekday, at = _draw_at(data.get("draw_at"))
    return LotterySpec(keyword, winners, tuple(prizes), after, weekday, at)


def _draw_at(value: Any) -> tuple[timedelta | None, int | None, time | None]:
    forms = (
        'a duration ("48h", "2d"), a time ("20:00": the next one) or a weekday and time '
        '("sun 20:00"), counted from the announcement'
    )
    expected = f"`data.draw_at` must be when the draw happens: {forms}"
    if value is None:
        raise ValueError(f"a lottery with `data.keyword` needs `data.draw_at`: {forms}")
    if isinstance(value, int) and not isinstance(value, bool):
        try:  # YAML 1.1 reads an unquoted 20:00 as 1200 (sexagesimal)
            return None, None, parse_time_of_day(f"{value // 60}:{value % 60:02d}")
        except ValueError:
            raise ValueError(expected) from None
    if not isinstance(value, str):
        raise ValueError(expected)
    text = value.strip()
    m = _DAY_TIME.match(text)
    try:
        if m:
            day = _DAYS.get(m.group(1).lower())
            if day is None:
                raise ValueError(f"{expected}; {m.group(1)!r} is not a weekday (mon..sun)")
            return None, day, parse_time_of_day(m.group(2))
        if ":" in text:
            return None, None, parse_time_of_day(text)
        after = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{expected}; {exc}") from None
    if not timedelta(0) < after <= LONGEST_WAIT:
        raise ValueError(f"`data.draw_at` must be more than 0 and at most {LONGEST_WAIT.days}d")
    return after, None, None


def draw_time_text(at: datetime) -> str:
    """A draw time as the announcement prints it: ``12月6日（周日）20:00``."""
    local = at.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日（{WEEKDAY_ZH[WEEKDAYS[local.weekday()]]}）{local:%H:%M}"


def lottery_context(data: Mapping[str, Any], occurrence: datetime) -> dict[str, Any]:
    """The ``lottery`` value a lottery campaign's template sees at ``occurrence``.

    ``keyword`` (empty when the campaign only announces), ``draw_at`` (an aware datetime, or
    None) and ``draw_time`` (``12月6日（周日）20:00``, or empty): computed from ``data.draw_at``
    exactly as the round's draw is, so the announcement cannot promise another time.
    """
    try:
        spec = lottery_spec(data)
    except ValueError:  # reported by `qunfu check`; the announcement still goes out
        spec = None
    if spec is None:
        return {"keyword": "", "draw_at": None, "draw_time": ""}
    at = spec.draw_at(occurrence)
    return {"keyword": spec.keyword, "draw_at": at, "draw_time": draw_time_text(at)}


def draw_weekday_and_time(text: str) -> tuple[int | None, time | None]:
    """The weekday (0 = Monday) and time of day free text names, e.g. ``周日 20:00`` or
    ``星期六晚上8点`` -> (6, 20:00) / (5, None); None for what it does not name."""
    day = None
    m = re.search(r"(?:周|星期|礼拜)([一二三四五六日天])", text)
    if m:
        day = "一二三四五六日".index(m.group(1).replace("天", "日"))
    else:
        m = re.search(r"\b(mon|tue|wed|thu|fri|sat|sun)", text.lower())
        if m:
            day = _DAYS[m.group(1)]
    at = None
    t = re.search(r"(\d{1,2})[:：](\d{2})", text)
    if t and int(t.group(1)) < 24 and int(t.group(2)) < 60:
        at = time(int(t.group(1)), int(t.group(2)))
    return day, at


def seed_of(campaign_id: str, occurrence: datetime, committed: str) -> str:
    """The draw's seed: fixed by the campaign, the occurrence and the committed random value."""
    instant = occurrence.astimezone(UTC).isoformat()
    raw = f"{_SEED_VERSION}|{campaign_id}|{instant}|{committed}"
    return hashlib.sha256(raw.encode()).hexdigest()


def ticket(seed: str, group_id: str, person_id: str) -> str:
    """An entrant's ticket: the lowest tickets win."""
    return hashlib.sha256(f"{seed}|{group_id}|{person_id}".encode()).hexdigest()


def draw(seed: str, group_id: str, entrants: Iterable[str], winners: int) -> list[str]:
    """The winners among ``entrants`` of one group, best first; independent of their order."""
    ranked = sorted(set(entrants), key=lambda p: (ticket(seed, group_id, p), p))
    return ranked[:winners]
