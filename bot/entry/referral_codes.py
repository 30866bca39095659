"""Referral codes: issued one per person, signed with an HMAC so a forged code is refused.

A code is ``SERIAL-MAC``: eight random characters, then eight characters of
HMAC-SHA256(secret, SERIAL), both from a 32-letter alphabet without look-alikes (no 0/O, 1/I).
A code is accepted when its format is right, its MAC matches, and it was issued (it is in the
``referral_code`` table, so a code can be revoked by deleting its row).

The secret comes from the environment (``QUNFU_REFERRAL_SECRET``). Only the simulator has a
default (:data:`DEV_SECRET`, published in docs/entry.md, good for demos and tests only); a live
gateway without the variable refuses every code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from loguru import logger

from bot.config import Settings, secret
from bot.entry.errors import bad_request
from db.entry_repositories import ReferralCodeRepo

SECRET_ENV = "QUNFU_REFERRAL_SECRET"
DEV_SECRET = "qunfu-dev-referral-secret-simulator-only"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PART = 8
_FORMAT = re.compile(rf"^[{ALPHABET}]{{{_PART}}}-[{ALPHABET}]{{{_PART}}}$")


def referral_secret(settings: Settings) -> bytes | None:
    """The HMAC secret: the environment's, else the dev default on the simulator, else None."""
    value = secret(SECRET_ENV)
    if value:
        return value.encode()
    if settings.gateway == "simulator":
        return DEV_SECRET.encode()
    logger.error("{} is not set: referral codes are refused until it is", SECRET_ENV)
    return None


class ReferralCodes:
    """Issues and verifies referral codes."""

    def __init__(self, repo: ReferralCodeRepo, key: bytes | None) -> None:
        self._repo = repo
        self._key = key

    def _mac(self, serial: str) -> str:
        assert self._key is not None
        digest = hmac.new(self._key, serial.encode(), hashlib.sha256).digest()
        return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:_PART])

    def issue(self, person_id: str, at: datetime) -> str:
        """The person's code, issued now unless they already have one."""
        if self._key is None:
            raise RuntimeError(f"{SECRET_ENV} is not set: cannot issue referral codes")
        existing = self._repo.of_person(person_id)
        if existing is not None:
            return existing
        while True:
            serial = "".join(secrets.choice(ALPHABET) for _ in range(_PART))
            code = f"{serial}-{self._mac(serial)}"
            if self._repo.add(code, person_id, at):
                return code

    def verify(self, code: object) -> str:
        """The id of the person a code was issued to; a Chinese refusal when it is not valid."""
        if not isinstance(code, str) or not code.strip():
            raise bad_request("bad_referral", "邀请码格式不正确，请向邀请您的朋友重新索取链接。")
        normal = code.strip().upper()
        if not _FORMAT.match(normal):
            raise bad_request("bad_referral", "邀请码格式不正确，请向邀请您的朋友重新索取链接。")
        serial, mac = normal.split("-")
        if self._key is None or not hmac.compare_digest(mac, self._mac(serial)):
            raise bad_request("forged_referral", "邀请码无效，请向邀请您的朋友重新索取链接。")
        owner = self._repo.owner(normal)
        if owner is None:
            raise bad_request(
                "unknown_referral", "邀请码不存在或已失效，请向邀请您的朋友重新索取链接。"
            )
        return owner
