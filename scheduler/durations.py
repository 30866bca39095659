"""Parsing the small time notations ops staff write: durations (``3h30m``) and times (``11:30``)."""

from __future__ import annotations

import re
from datetime import time, timedelta

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``90s``, ``20m``, ``3h30m``, ``1d`` or a number of seconds; raise ValueError otherwise."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 20m or 3h30m")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    s = str(text).strip().replace(" ", "")
    m = _DURATION.match(s)
    if not s or not m or not any(m.groups()):
        raise ValueError(f"expected a duration such as 20m or 3h30m, got {text!r}")
    d, h, mi, se = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=se)


def parse_time_of_day(text: str | time) -> time:
    """``HH:MM`` in 24-hour time; ``25:61`` and friends raise ValueError naming the problem."""
    if isinstance(text, time):
        return text
    if isinstance(text, int) and not isinstance(text, bool):
        # YAML 1.1 reads 11:30 unquoted as the sexagesimal number 690.
        text = f"{text // 60}:{text % 60:02d}"
    m = _TIME.match(str(text).strip())
    if not m:
        raise ValueError(f'expected a time as HH:MM, such as "11:30", got {text!r}')
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(f"impossible time {text!r}: hours go 00-23 and minutes 00-59")
    return time(hour, minute)


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, for messages and docs."""
    total = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0s"
