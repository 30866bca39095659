"""Lotteries with an auditable draw (docs/lottery.md).

:mod:`rules` holds the pure parts (the campaign's ``data``, the seed, the draw); :mod:`service`
opens rounds, takes entries, draws in the time loop and verifies stored draws.

The service's names are imported on first use: validating a lottery campaign imports
:mod:`rules` (through this package), and should not pull in the database layer with it (about
a second of every ``qunfu check``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bot.lottery.rules import LotterySpec, draw, lottery_spec, seed_of

if TYPE_CHECKING:
    from bot.lottery.service import Entry, LotteryAudit, LotteryService, Verification

__all__ = [
    "Entry",
    "LotteryAudit",
    "LotteryService",
    "LotterySpec",
    "Verification",
    "draw",
    "lottery_spec",
    "seed_of",
]
_FROM_SERVICE = ("Entry", "LotteryAudit", "LotteryService", "Verification")


def __getattr__(name: str) -> Any:
    if name in _FROM_SERVICE:
        return getattr(import_module("bot.lottery.service"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
