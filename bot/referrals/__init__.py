"""Tiered referral rewards: partner events in, a ledger that pays each tier once, fulfilment out.

Modules: :mod:`signatures` (webhook HMAC), :mod:`events` (event JSON and CSV rows),
:mod:`rules` (pure counting rules), :mod:`ledger` (:class:`ReferralLedger`), :mod:`intake`
(the webhook and import service), :mod:`fulfilment` (export, push, confirm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.referrals.events import ConversionEvent, EventError
from bot.referrals.intake import Answer, ReferralIntake
from bot.referrals.ledger import Grant, LedgerError, Progress, Receipt, ReferralLedger
from bot.referrals.rules import Burst

if TYPE_CHECKING:
    from bot.app import Qunfu

__all__ = [
    "Answer",
    "Burst",
    "ConversionEvent",
    "EventError",
    "Grant",
    "LedgerError",
    "Progress",
    "Receipt",
    "ReferralIntake",
    "ReferralLedger",
    "build_referrals",
]


def build_referrals(bot: Qunfu) -> tuple[ReferralLedger, ReferralIntake]:
    """The ledger and the webhook intake of a running bot (called by the composition root)."""
    from bot.referrals.signatures import webhook_secrets

    settings = bot.settings
    ledger = ReferralLedger(
        bot.engine,
        lambda: bot.ops.referral,
        bot.clock,
        Burst(settings.referral.burst_count, settings.referral.burst_window),
    )
    intake = ReferralIntake(
        ledger,
        bot.referral_codes,
        lambda: webhook_secrets(settings),
        bot.clock,
        settings.referral.tolerance,
    )
    return ledger, intake
