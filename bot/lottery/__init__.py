"""Lotteries with an auditable draw (docs/lottery.md).

:mod:`rules` holds the pure parts (the campaign's ``data``, the seed, the draw); :mod:`service`
opens rounds, takes entries, draws in the time loop and verifies stored draws.
"""

from bot.lottery.rules import LotterySpec, draw, lottery_spec, seed_of
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
