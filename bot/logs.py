"""Structured logging with personal data masked before anything is written.

Every time a log shows is Asia/Shanghai with its offset (``+08:00``), whatever the machine's
time zone: the record's own time, datetimes bound as extras, and ISO times inside messages that
were written in UTC. The bot's clock, schedules and chat texts are Shanghai time, so a log that
mixed in UTC would have people comparing 03:30 with 11:30.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import Any

from loguru import logger

from bot.privacy import mask_text
from scheduler.clock import SHANGHAI, Clock

# An ISO-8601 time written in UTC (`+00:00` or `Z`), as datetime.isoformat() and str() give it.
_UTC_ISO = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"
    r"(?:\+00:00|\+0000|Z)(?![\w:])"
)


def in_shanghai(dt: datetime) -> datetime:
    """An aware datetime shown in Asia/Shanghai, with a fixed-offset tzinfo.

    The fixed offset (not the ZoneInfo itself) because loguru formats ``Z`` by asking the
    tzinfo for ``utcoffset(None)``, which a ZoneInfo cannot answer.
    """
    local = (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).astimezone(SHANGHAI)
    offset = local.utcoffset()
    assert offset is not None  # Asia/Shanghai always has one
    return local.replace(tzinfo=timezone(offset))


def shanghai_text(text: str) -> str:
    """``text`` with every UTC ISO time in it rewritten as the same instant in Asia/Shanghai."""
    if "+00" not in text and "Z" not in text:
        return text
    return _UTC_ISO.sub(_rewrite_iso, text)


def _rewrite_iso(match: re.Match[str]) -> str:
    day, sep, clock = match.groups()
    try:
        dt = datetime.fromisoformat(f"{day}T{clock}+00:00")
    except ValueError:  # looks like a time but is not one (25:61): leave it as written
        return match.group(0)
    return in_shanghai(dt).isoformat(sep=sep, timespec=_timespec(clock))


def _timespec(clock: str) -> str:
    if "." in clock:
        return "microseconds" if len(clock.split(".")[1]) > 3 else "milliseconds"
    return "seconds" if clock.count(":") == 2 else "minutes"


# The bot's clock when it is not the machine's (a simulation's virtual clock): log lines then
# carry the time the bot lives in, so they read beside its transcript.
_bot_clock: Clock | None = None


def follow_clock(clock: Clock | None) -> None:
    """Stamp log records with ``clock``'s time instead of the machine's (None: the machine's).
    A simulation or the demo follows its virtual clock; a live bot needs nothing."""
    global _bot_clock
    _bot_clock = clock


def _patch_record(record: Any) -> None:
    # The record's own time may be the machine's zone (loguru uses local time).
    clock = _bot_clock
    at = record["time"]
    if clock is not None:
        at = at + (clock.now() - at)  # shifted, not replaced: loguru formats its own type
    record["time"] = in_shanghai(at)
    record["message"] = mask_text(shanghai_text(record["message"]))
    for key, value in list(record["extra"].items()):
        if isinstance(value, datetime):
            record["extra"][key] = in_shanghai(value).isoformat()
        elif isinstance(value, str):
            record["extra"][key] = mask_text(shanghai_text(value))


def setup_logging(
    level: str = "INFO", *, console_level: str | None = None, json_file: Path | None = None
) -> None:
    """Log to stderr (human-readable) and optionally to a JSON-lines file, PII masked, all
    times in Asia/Shanghai."""
    logger.remove()
    logger.configure(patcher=_patch_record)
    # diagnose=False: tracebacks must not print local variables (message texts, names).
    logger.add(
        sys.stderr,
        diagnose=False,
        level=console_level or level,
        format="<green>{time:HH:mm:ss Z}</green> <level>{level: <7}</level> {message} "
        "<dim>{extra}</dim>",
    )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            json_file,
            level=level,
            serialize=True,
            rotation="20 MB",
            retention=5,
            diagnose=False,
        )
