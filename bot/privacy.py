"""Masking personal data before it reaches logs, escalations or group chats."""

from __future__ import annotations

import re

_CARD = re.compile(r"\b(\d{4})\d{8,11}(\d{4})\b")
_ID = re.compile(r"\b(\d{6})\d{8}(\d{3}[\dXx])\b")
_PHONE = re.compile(r"\b(1[3-9]\d)\d{4}(\d{4})\b")


def mask_text(text: str) -> str:
    """Replace card, ID and mobile numbers by masked forms (keep first and last digits)."""
    text = _ID.sub(r"\1********\2", text)
    text = _CARD.sub(r"\1********\2", text)
    return _PHONE.sub(r"\1****\2", text)


def mask(identifier: str) -> str:
    """A contact id shortened for logs: enough to correlate, not enough to identify."""
    if len(identifier) <= 4:
        return identifier[:1] + "***"
    return identifier[:2] + "***" + identifier[-2:]


def contains_personal_data(text: str) -> bool:
    """True when the text holds something that looks like a card, ID or mobile number."""
    return bool(_CARD.search(text) or _ID.search(text) or _PHONE.search(text))
