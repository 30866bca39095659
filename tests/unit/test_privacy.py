"""Personal data (mobile, ID card and bank card numbers) is found and masked wherever it is written.

Chat text is Chinese: numbers come straight after Chinese characters (``手机13812345678``), with
spaces or dashes inside, after ``+86``, or as an ID ending in ``X``. Ordinary numbers (prices,
dates, times, short codes) must stay readable.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from loguru import logger

from bot.logs import setup_logging
from bot.privacy import contains_personal_data, find_personal_data, mask_text

# --- generators of valid numbers -----------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_PROVINCES = ("11", "31", "32", "44", "51", "65")


def _luhn_check_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        n = int(c)
        if i % 2 == 0:  # doubled: they sit at odd positions once the check digit is appended
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str(-total % 10)


def _id_check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _grouped(digits: str, sizes: list[int], seps: list[str]) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(digits[at : at + size])
        at += size
    if at < len(digits):
        parts.append(digits[at:])
    out = parts[0]
    for sep, part in zip(seps, parts[1:], strict=False):
        out += sep + part
    return out


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    """(as written, the 11 digits)."""
    number = (
        "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    )
    prefix = draw(st.sampled_from(["", "86", "+86", "+86 ", "86-", "0086 ", "+86-"]))
    sep = st.sampled_from([" ", "-", "\u3000"])
    shape = draw(st.sampled_from(["whole", "3-4-4", "3-8"]))
    if shape == "whole":
        written = number
    elif shape == "3-4-4":
        written = _grouped(number, [3, 4], [draw(sep), draw(sep)])
    else:
        written = _grouped(number, [3], [draw(sep)])
    return prefix + written, number


@st.composite
def bank_cards(draw: st.DrawFn) -> tuple[str, str]:
    bin_ = draw(st.sampled_from(["62", "4", "5", "9558", "3"]))
    length = draw(st.integers(13, 19))
    body = bin_ + draw(
        st.text("0123456789", min_size=length - len(bin_) - 1, max_size=length - len(bin_) - 1)
    )
    number = body + _luhn_check_digit(body)
    if draw(st.booleans()):
        return number, number
    sep = draw(st.sampled_from([" ", "-"]))
    return _grouped(number, [4] * ((length - 1) // 4), [sep] * 4), number


@st.composite
def id_cards(draw: st.DrawFn) -> tuple[str, str]:
    born = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31)))
    area = draw(st.sampled_from(_PROVINCES)) + draw(st.text("0123456789", min_size=4, max_size=4))
    if draw(st.integers(0, 4)) == 0:  # the old 15-digit form, 1900s births, no check digit
        born = born.replace(year=1900 + born.year % 100)
        number = (
            area + born.strftime("%y%m%d") + draw(st.text("0123456789", min_size=3, max_size=3))
        )
        return number, number
    first17 = area + born.strftime("%Y%m%d") + draw(st.text("0123456789", min_size=3, max_size=3))
    check = _id_check_char(first17)
    written_check = draw(st.sampled_from("Xx")) if check == "X" else check
    written = first17 + written_check
    if draw(st.booleans()):
        written = _grouped(written, [6, 8], [draw(st.sampled_from([" ", "-"]))] * 2)
    return written, first17 + check


# Surrounding text: Chinese, letters (X included), spaces, punctuation; never digits, which
# would change the number itself.
_AROUND = st.text(
    alphabet=st.sampled_from(
        list("手机号卡身份证请联系我的是电话转账谢谢")
        + list("abcXxyzTEL")
        + list(" \u3000-+，。：；！？、（）,.:;!?()/#*")
    ),
    max_size=12,
)
_PERSONAL = st.one_of(phones(), bank_cards(), id_cards())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# --- the observations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("手机13812345678", "手机138****5678"),
        ("我的电话是13812345678，谢谢", "我的电话是138****5678，谢谢"),
        ("电话：+86 138-1234-5678。", "电话：+86 138****5678。"),
        ("加我138 1234 5678", "加我138****5678"),
        ("8613812345678", "86138****5678"),
        ("卡号6222 0212 3456 7890 谢谢", "卡号6222********7890 谢谢"),
        ("卡号6222021234567890128转账", "卡号6222********0128转账"),  # 19 digits, Luhn
        ("身份证11010519491231002X办卡", "身份证110105********002X办卡"),
        ("身份证号110105199003071239", "身份证号110105********1239"),
        ("老身份证110105491231002", "老身份证110105******002"),
        ("２０２６年手机１３８１２３４５６７８", "２０２６年手机138****5678"),
    ],
)
def test_numbers_next_to_chinese_text_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked
    assert contains_personal_data(text)


def test_findings_say_what_and_where_for_reuse_by_moderation() -> None:
    text = "手机13812345678，卡号6222 0212 3456 7890，身份证11010519491231002x"

    found = find_personal_data(text)

    assert [(f.kind, text[f.start : f.end]) for f in found] == [
        ("phone", "13812345678"),
        ("bank_card", "6222 0212 3456 7890"),
        ("id_card", "11010519491231002x"),
    ]
    assert found[0].span == (2, 13)
    assert "13812345678" not in repr(found[0])  # a finding logged by mistake leaks nothing


@pytest.mark.parametrize(
    "text",
    [
        "午餐38.5元，满100减20",
        "活动日期2026-12-01至2027-03-31",
        "11:30开抢，08:00-09:30早餐",
        "验证码123456，房间8808",
        "群号sh-xuhui-xjh 距离812米 8.8折",
        "2026-12-01 11:30:00+08:00",
        "订单12345678901",  # 11 digits, but no mobile starts with 12
        "流水号1234567890123",  # 13 digits failing Luhn
        "110105194912310022",  # an ID with a wrong check digit (and failing Luhn)
        "0000000000000000",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text
    assert find_personal_data(text) == []


def test_numbers_not_bounded_by_non_digits_are_not_phone_numbers() -> None:
    # The digits of a longer number are not a phone number inside it.
    assert mask_text("编号213812345678") == "编号213812345678"
    assert mask_text("编号138123456789") == "编号138123456789"


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(before=_AROUND, personal=_PERSONAL, after=_AROUND)
@example(before="手机", personal=("13812345678", "13812345678"), after="")
@example(before="证件", personal=("11010519491231002x", "11010519491231002X"), after="X号")
@example(before="+", personal=("+86 138 1234 5678", "13812345678"), after="-")
def test_embedded_personal_data_is_always_masked(
    before: str, personal: tuple[str, str], after: str
) -> None:
    written, number = personal
    masked = mask_text(before + written + after)

    assert _digits(number) not in _digits(masked)
    assert masked.startswith(before)
    assert contains_personal_data(before + written + after)


_ORDINARY = st.one_of(
    st.builds(
        lambda y, m, d: f"{y}-{m:02}-{d:02}",
        st.integers(2000, 2099),
        st.integers(1, 12),
        st.integers(1, 28),
    ),
    st.builds(
        lambda y, m, d: f"{y}年{m}月{d}日",
        st.integers(2000, 2099),
        st.integers(1, 12),
        st.integers(1, 28),
    ),
    st.builds(lambda h, m: f"{h:02}:{m:02}", st.integers(0, 23), st.integers(0, 59)),
    st.builds(lambda y, c: f"{y}.{c}元", st.integers(0, 99999), st.integers(0, 99)),
    st.builds(lambda y: f"¥{y}", st.integers(0, 10**7)),
    st.builds(str, st.integers(0, 999999)),  # short codes, counts, distances
)
# Between two ordinary numbers there is always something that is not a digit separator: two
# short codes joined by a single space would read as one grouped number, as a card does.
_JOINER = st.text(
    alphabet=st.sampled_from(list("元到点 ，。、至和:")), min_size=1, max_size=4
).filter(lambda s: s.strip(" -") != "")


@settings(max_examples=300)
@given(st.lists(st.tuples(_ORDINARY, _JOINER), max_size=8))
def test_ordinary_numbers_are_never_masked(parts: list[tuple[str, str]]) -> None:
    text = "".join(number + joiner for number, joiner in parts)

    assert mask_text(text) == text


_ANY = st.text(alphabet=st.sampled_from(list("0123456789 -+Xx手机卡号，.:*")), max_size=60)


@settings(max_examples=300)
@given(before=_ANY, personal=st.one_of(st.just(("", "")), _PERSONAL), after=_ANY)
def test_masking_is_idempotent(before: str, personal: tuple[str, str], after: str) -> None:
    once = mask_text(before + personal[0] + after)

    assert mask_text(once) == once
    assert find_personal_data(once) == []


# --- where masking happens today: the logs ---------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    setup_logging("DEBUG", console_level="CRITICAL")
    logger.add(lambda m: lines.append(str(m)), format="{message} {extra}", level="DEBUG")
    yield lines
    logger.remove()
    logger.add(sys.stderr)


def test_log_lines_mask_numbers_next_to_chinese_text(log_lines: list[str]) -> None:
    logger.bind(text="手机13812345678").info(
        "会员说：卡号6222 0212 3456 7890，身份证11010519491231002X"
    )

    assert len(log_lines) == 1
    assert "138****5678" in log_lines[0]
    assert "6222********7890" in log_lines[0]
    assert "110105********002X" in log_lines[0]
    assert not re.search(r"13812345678|6222 0212 3456 7890|19491231", log_lines[0])
