"""Structured logging with personal data masked before anything is written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from loguru import logger

from bot.privacy import mask_text


def _mask_record(record: Any) -> None:
    record["message"] = mask_text(record["message"])
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = mask_text(value)


def setup_logging(
    level: str = "INFO", *, console_level: str | None = None, json_file: Path | None = None
) -> None:
    """Log to stderr (human-readable) and optionally to a JSON-lines file, PII masked."""
    logger.remove()
    logger.configure(patcher=_mask_record)
    # diagnose=False: tracebacks must not print local variables (message texts, names).
    logger.add(
        sys.stderr,
        diagnose=False,
        level=console_level or level,
        format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message} "
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
