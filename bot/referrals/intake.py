"""The service behind ``POST /webhooks/referral-events`` and ``qunfu referrals import``.

:meth:`ReferralIntake.receive` takes the raw body and the signature header and answers with an
HTTP status and a JSON payload: 200 for an event taken (counted or not, with the reason) or a
replay; 4xx with a stable ``error`` token and a reason for anything refused, and nothing paid.
It is synchronous (database work): the web layer runs it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from bot.entry.errors import EntryError
from bot.entry.referral_codes import ReferralCodes
from bot.privacy import mask
from bot.referrals import signatures
from bot.referrals.events import ConversionEvent, EventError, parse_body, read_csv
from bot.referrals.ledger import LedgerError, Receipt, ReferralLedger
from scheduler.clock import Clock

_OWNER_CACHE_TTL = timedelta(minutes=1)
_OWNER_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status and JSON payload."""

    status: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class ImportReport:
    """What an import did: receipts of rows taken, and bad rows with line and reason."""

    taken: list[Receipt]
    bad: list[tuple[int, str]]


class UnknownCode(LookupError):
    """A referral code that was never issued, is forged or malformed."""


class ReferralIntake:
    """Checks, parses and records partner events."""

    def __init__(
        self,
        ledger: ReferralLedger,
        codes: ReferralCodes,
        keys: Callable[[], Sequence[bytes]],
        clock: Clock,
        tolerance: timedelta,
    ) -> None:
        self.ledger = ledger
        self.codes = codes
        self.keys = keys
        self.clock = clock
        self.tolerance = tolerance
        # Code → owner for a minute: a partner sends several events per code, and a revoked
        # code (its row deleted) stops being accepted within that minute.
        self._owners: dict[str, tuple[str, datetime]] = {}

    def receive(self, body: bytes, signature: str | None) -> Answer:
        """Verify, parse and record one webhook delivery."""
        log = logger.bind(source="webhook")
        keys = self.keys()
        if not keys:
            log.error("referral webhook refused: {} is not set", signatures.WEBHOOK_SECRET_ENV)
            return _refuse(503, "not_configured", "the webhook secret is not configured")
        try:
            signatures.verify(signature, body, keys, self.clock.now(), self.tolerance)
        except signatures.SignatureError as exc:
            log.warning("referral webhook refused ({}): {}", exc.code, exc)
            return _refuse(401, exc.code, str(exc))
        try:
            event = parse_body(body)
        except EventError as exc:
            log.warning("referral webhook refused ({}): {}", exc.code, exc)
            return _refuse(400, exc.code, str(exc))
        log = log.bind(event=event.event_id, code=mask(event.referral_code))
        try:
            receipt = self.take(event, "webhook")
        except UnknownCode as exc:
            log.warning("referral webhook refused (unknown_code): {}", exc)
            return _refuse(422, "unknown_code", str(exc))
        except LedgerError as exc:
            log.error("referral webhook refused (not_configured): {}", exc)
            return _refuse(503, "not_configured", str(exc))
        log.bind(outcome=receipt.outcome, duplicate=receipt.duplicate).info("referral event taken")
        return Answer(200, _accepted(receipt))

    def take(self, event: ConversionEvent, source: str) -> Receipt:
        """Record an already-verified event; :class:`UnknownCode` for a code nobody owns."""
        return self.ledger.record(event, self._owner(event.referral_code), source)

    def _owner(self, code: str) -> str:
        now = self.clock.now()
        cached = self._owners.get(code)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            owner = self.codes.verify(code)
        except EntryError as exc:
            raise UnknownCode(f"referral_code: {exc.code}") from None
        if len(self._owners) >= _OWNER_CACHE_SIZE:
            self._owners.clear()
        self._owners[code] = (owner, now + _OWNER_CACHE_TTL)
        return owner

    def import_csv(self, text: str) -> ImportReport:
        """Take every good row of an events CSV; list the bad ones with line numbers."""
        taken: list[Receipt] = []
        bad: list[tuple[int, str]] = []
        for row in read_csv(text):
            if row.event is None:
                bad.append((row.line, row.error or "bad row"))
                continue
            try:
                taken.append(self.take(row.event, "import"))
            except UnknownCode as exc:
                bad.append((row.line, str(exc)))
        return ImportReport(taken, bad)


def _accepted(receipt: Receipt) -> dict[str, Any]:
    if receipt.duplicate:
        return {"ok": True, "event_id": receipt.event_id, "duplicate": True}
    return {
        "ok": True,
        "event_id": receipt.event_id,
        "duplicate": False,
        "counted": receipt.outcome == "counted",
        "outcome": receipt.outcome,
    }


def _refuse(status: int, code: str, reason: str) -> Answer:
    return Answer(status, {"ok": False, "error": code, "reason": reason})
