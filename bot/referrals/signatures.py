"""Webhook signatures, Stripe style: ``X-Qunfu-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``.

``v1`` is HMAC-SHA256 over ``"<t>.<body>"``. Several ``v1`` values may be sent and several
secrets may be configured (key rotation): a request passes when any signature matches any
secret, compared in constant time. ``t`` must lie within the tolerance of the bot's clock, in
both directions, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.config import Settings, secret

HEADER = "X-Qunfu-Signature"
WEBHOOK_SECRET_ENV = "QUNFU_REFERRAL_WEBHOOK_SECRET"
PUSH_SECRET_ENV = "QUNFU_REFERRAL_PUSH_SECRET"
DEV_WEBHOOK_SECRET = "qunfu-dev-webhook-secret-simulator-only"
_MAX_SIGNATURES = 8


class SignatureError(ValueError):
    """A signature header that does not prove the body: ``code`` is a stable token."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def webhook_secrets(settings: Settings) -> list[bytes]:
    """The accepted secrets, newest first, from the environment (comma-separated).

    On the simulator an unset variable falls back to :data:`DEV_WEBHOOK_SECRET` (documented, for
    scenarios and demos only); a live gateway without it accepts no event.
    """
    raw = secret(WEBHOOK_SECRET_ENV)
    if raw:
        return [part.strip().encode() for part in raw.split(",") if part.strip()]
    if settings.gateway == "simulator":
        return [DEV_WEBHOOK_SECRET.encode()]
    return []


def push_secret(settings: Settings) -> bytes | None:
    """The secret outbound reward pushes are signed with."""
    raw = secret(PUSH_SECRET_ENV)
    if raw:
        return raw.strip().encode()
    inbound = webhook_secrets(settings)
    return inbound[0] if inbound else None


def compute(key: bytes, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` at ``timestamp``."""
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(key: bytes, body: bytes, at: datetime) -> str:
    """A header value signing ``body`` at the instant ``at``."""
    t = int(at.timestamp())
    return f"t={t},v1={compute(key, t, body)}"


def verify(
    header: str | None,
    body: bytes,
    keys: Sequence[bytes],
    now: datetime,
    tolerance: timedelta,
) -> None:
    """Return when ``header`` proves ``body``; raise :class:`SignatureError` saying why not."""
    if not keys:
        raise SignatureError("not_configured", f"{WEBHOOK_SECRET_ENV} is not set")
    if not header:
        raise SignatureError("missing_signature", f"the {HEADER} header is missing")
    timestamp, candidates = _parse(header)
    age = now.timestamp() - timestamp
    if abs(age) > tolerance.total_seconds():
        raise SignatureError(
            "stale_signature",
            f"signature time is {int(age)} s from the receiver's clock "
            f"(tolerance {int(tolerance.total_seconds())} s)",
        )
    expected = [compute(k, timestamp, body) for k in keys]
    # Every pair is compared, so the time taken says nothing about which one came close.
    matched = False
    for given in candidates:
        for want in expected:
            matched |= hmac.compare_digest(given.encode(), want.encode())
    if not matched:
        raise SignatureError("bad_signature", "no v1 signature matches the body")


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed_signature", f"expected key=value, got {part!r}")
        if key == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed_signature", "t must be unix seconds")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None:
        raise SignatureError("malformed_signature", "the signature has no t=")
    if not candidates:
        raise SignatureError("malformed_signature", "the signature has no v1=")
    if len(candidates) > _MAX_SIGNATURES:
        raise SignatureError("malformed_signature", f"more than {_MAX_SIGNATURES} v1 values")
    return timestamp, candidates
