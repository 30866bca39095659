"""Webhook signatures: constant-time HMAC over "t.body", rotation, tolerance on the bot's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.referrals.signatures import SignatureError, compute, sign, verify

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
BODY = b'{"event_id": "ev-1"}'
OLD, NEW = b"old-secret", b"new-secret"
TOLERANCE = timedelta(seconds=300)


def code_of(header: str | None, keys: list[bytes], now: datetime = NOW) -> str:
    with pytest.raises(SignatureError) as info:
        verify(header, BODY, keys, now, TOLERANCE)
    return info.value.code


def test_a_body_signed_with_the_secret_passes() -> None:
    verify(sign(NEW, BODY, NOW), BODY, [NEW], NOW, TOLERANCE)


def test_a_changed_body_or_another_secret_fails() -> None:
    header = sign(NEW, BODY, NOW)
    with pytest.raises(SignatureError, match="no v1"):
        verify(header, BODY + b" ", [NEW], NOW, TOLERANCE)
    assert code_of(header, [OLD]) == "bad_signature"


def test_rotation_any_of_several_v1_matches_any_configured_secret() -> None:
    t = int(NOW.timestamp())
    header = f"t={t},v1={compute(OLD, t, BODY)},v1={compute(NEW, t, BODY)}"
    verify(header, BODY, [NEW], NOW, TOLERANCE)  # the sender signs with both during rotation
    verify(sign(OLD, BODY, NOW), BODY, [NEW, OLD], NOW, TOLERANCE)  # the receiver keeps both


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_a_timestamp_beyond_the_tolerance_either_way_is_stale(skew: int) -> None:
    header = sign(NEW, BODY, NOW - timedelta(seconds=skew))
    assert code_of(header, [NEW]) == "stale_signature"


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_a_timestamp_inside_the_tolerance_passes(skew: int) -> None:
    verify(sign(NEW, BODY, NOW - timedelta(seconds=skew)), BODY, [NEW], NOW, TOLERANCE)


def test_the_tolerance_is_measured_on_the_given_clock_not_the_wall() -> None:
    virtual_now = datetime(2030, 1, 1, tzinfo=UTC)
    verify(sign(NEW, BODY, virtual_now), BODY, [NEW], virtual_now, TOLERANCE)
    assert code_of(sign(NEW, BODY, virtual_now), [NEW], NOW) == "stale_signature"


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("v1=abc", "malformed_signature"),
        ("t=1796090400", "malformed_signature"),
        ("t=soon,v1=abc", "malformed_signature"),
        ("garbage", "malformed_signature"),
        ("t=1796090400,v1=签名", "bad_signature"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, code: str) -> None:
    assert code_of(header, [NEW]) == code


def test_no_configured_secret_accepts_nothing() -> None:
    assert code_of(sign(NEW, BODY, NOW), []) == "not_configured"
