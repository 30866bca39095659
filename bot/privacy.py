"""Finding and masking personal data before it reaches logs, escalations or group chats.

Detection works on *digit runs*: digits joined by single separators (a space, a hyphen, their
full-width forms). A run is bounded by non-digits only, never by ``\\b``, so a number written
straight after Chinese text (``手机13812345678``) or a letter is found, and a number inside a
longer digit string is not. Within a run, every stretch of whole chunks is tried, so
``2026 13812345678`` still yields the phone number.

What is found (:func:`find_personal_data`):

- ``phone``: a mainland mobile number ``1[3-9]`` + 9 digits, written whole, ``3-4-4`` or ``3-8``,
  optionally after ``86`` / ``+86`` / ``0086``;
- ``id_card``: an 18-character resident ID (province code, a real birth date, ISO 7064 check
  character, ``X`` allowed) written whole or ``6-8-4``; or the old 15-digit form (province code,
  a real ``19YYMMDD`` birth date; it has no check digit) written whole or ``6-6-3``;
- ``bank_card``: 13 to 19 digits passing the Luhn check, written whole or in card groupings
  (``4-4-4-4[-k]``, ``4-6-5``, ``6-n``) with one kind of separator. The Luhn check keeps
  order numbers, timestamps and other long numbers out (nine in ten fail it). A number written
  alone in groups of four, 16 to 19 digits (``6222 0212 3456 7890``), is a card even when it
  fails Luhn: ordinary numbers are not written that way, and a mistyped card number is still
  someone's card.

Prices (``38.5元``), dates (``2026-12-01``), times (``11:30``) and short codes are left alone.
The detectors are public so moderation can reuse them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, NamedTuple

__all__ = [
    "PersonalData",
    "PersonalDataKind",
    "contains_personal_data",
    "find_personal_data",
    "mask",
    "mask_name",
    "mask_text",
]

PersonalDataKind = Literal["phone", "id_card", "bank_card"]

# Digits joined by single separators: one maximal run per match. \d also takes full-width digits.
_RUN = re.compile(r"\d+(?:[ \u00a0\u3000\-\uff0d]\d+)*")
_CHUNK = re.compile(r"\d+")
_ID_CHECK_CHARS = "Xx\uff38\uff58"  # X, x and their full-width forms
_PHONE_PREFIXES = ("0086", "86")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PROVINCES = frozenset(
    ("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37")
    + ("41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54")
    + ("61", "62", "63", "64", "65", "71", "81", "82", "91")
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
# Bounds that keep scanning linear in the text, however long a run of digits and separators:
_FEWEST = 11  # digits in the shortest finding, a mobile number
_LONGEST = 19  # digits in the longest: a 19-digit card (0086 + a mobile number is 15)
_MOST_CHUNKS = 5  # chunks in the longest written form: 4-4-4-4-3, or +86 138 1234 5678


@dataclass(frozen=True, slots=True)
class PersonalData:
    """One piece of personal data in a text: its kind and where it is (``text[start:end]``)."""

    kind: PersonalDataKind
    start: int
    end: int
    digits: str = field(repr=False)
    """The number itself, separators and phone prefix removed (an ID may end in ``X``)."""
    prefix: str = field(default="", repr=False)
    """A phone's country prefix as written (``+86 ``), kept when masking."""

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)``, as :meth:`re.Match.span` gives it."""
        return self.start, self.end

    def masked(self) -> str:
        """The masked form: enough to recognise one's own number, not enough to use it."""
        d = self.digits
        if self.kind == "phone":
            return f"{self.prefix}{d[:3]}****{d[-4:]}"
        if self.kind == "id_card":  # the birth date goes; region and the last digits stay
            return f"{d[:6]}********{d[-4:]}" if len(d) == 18 else f"{d[:6]}******{d[-3:]}"
        return f"{d[:4]}********{d[-4:]}"


def find_personal_data(text: str) -> list[PersonalData]:
    """Every phone, ID card and bank card number in ``text``, in order, never overlapping.

    Where several readings of the same digits are possible the longest wins, then ID before
    phone before card.
    """
    found: list[PersonalData] = []
    for run in _RUN.finditer(text):
        if run.end() - run.start() >= _FEWEST:
            found.extend(_scan_run(text, run))
    return found


def contains_personal_data(text: str) -> bool:
    """True when the text holds a phone, ID card or bank card number."""
    return bool(find_personal_data(text))


def mask_text(text: str) -> str:
    """``text`` with every phone, ID card and bank card number masked; idempotent.

    Masking repeats until nothing is found: the digits a mask keeps can, in rare texts, join
    neighbouring digits into a new number, and masking twice must change nothing.
    """
    while found := find_personal_data(text):
        parts: list[str] = []
        last = 0
        for item in found:
            parts += [text[last : item.start], item.masked()]
            last = item.end
        parts.append(text[last:])
        text = "".join(parts)
    return text


def mask(identifier: str) -> str:
    """A contact id shortened for logs: enough to correlate, not enough to identify."""
    if len(identifier) <= 4:
        return identifier[:1] + "***"
    return identifier[:2] + "***" + identifier[-2:]


def mask_name(name: str) -> str:
    """A nickname as a group sees it on a leaderboard or a winners list: its first character
    and stars (``张*``, ``L***``), never a phone or card number; ``群友`` without a name."""
    name = mask_text(name.strip())
    if not name:
        return "群友"
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


class _Stretch(NamedTuple):
    """Whole chunks of a digit run: where they are, their digits, lengths and separators."""

    start: int
    end: int
    digits: str  # ASCII digits
    lengths: tuple[int, ...]
    separators: str
    whole_run: bool
    check_char: bool  # an X follows the last digit (an ID's check character)


def _scan_run(text: str, run: re.Match[str]) -> Iterator[PersonalData]:
    base = run.start()
    spans = [(base + m.start(), base + m.end()) for m in _CHUNK.finditer(run[0])]
    digits = [_ascii_digits(text[a:b]) for a, b in spans]
    count = len(spans)
    i = 0
    while i < count:
        best: PersonalData | None = None
        total = 0
        for j in range(i, min(i + _MOST_CHUNKS, count)):
            total += len(digits[j])
            if total > _LONGEST:
                break
            if total < _FEWEST:
                continue
            end = spans[j][1]
            stretch = _Stretch(
                start=spans[i][0],
                end=end,
                digits="".join(digits[i : j + 1]),
                lengths=tuple(len(d) for d in digits[i : j + 1]),
                separators="".join(text[spans[k][1]] for k in range(i, j)),
                whole_run=i == 0 and j == count - 1,
                check_char=end < len(text) and text[end] in _ID_CHECK_CHARS,
            )
            candidate = _id_card(stretch) or _phone(text, stretch) or _bank_card(stretch)
            if candidate is not None and (best is None or candidate.end > best.end):
                best = candidate
        if best is None:
            i += 1
            continue
        yield best
        while i < count and spans[i][0] < best.end:
            i += 1


def _one_separator(s: _Stretch) -> bool:
    return len(set(s.separators)) <= 1


def _id_card(s: _Stretch) -> PersonalData | None:
    # Checked before phone and card: an 18-digit ID can pass Luhn, never the other way round.
    if s.check_char and s.lengths in ((17,), (6, 8, 3)):
        number, end = s.digits + "X", s.end + 1
    elif s.lengths in ((18,), (6, 8, 4), (15,), (6, 6, 3)):
        number, end = s.digits, s.end
    else:
        return None
    if number[:2] not in _PROVINCES or not _one_separator(s):
        return None
    if len(number) == 18:
        if not _real_date(number[6:14]) or _id_check_char(number[:17]) != number[17]:
            return None
    elif not _real_date("19" + number[6:12]):
        return None
    return PersonalData("id_card", s.start, end, number)


def _phone(text: str, s: _Stretch) -> PersonalData | None:
    number = s.digits
    lengths = s.lengths
    prefix_len = 0
    for prefix in _PHONE_PREFIXES:
        if len(number) == len(prefix) + 11 and number.startswith(prefix):
            if lengths[0] == len(prefix) and len(lengths) > 1:
                lengths = lengths[1:]  # a prefix of its own: +86 138 1234 5678
            elif lengths[0] > len(prefix):
                lengths = (lengths[0] - len(prefix), *lengths[1:])
            else:
                return None
            prefix_len = len(prefix)
            number = number[prefix_len:]
            break
    if lengths not in ((11,), (3, 4, 4), (3, 8)) or not _MOBILE.fullmatch(number):
        return None
    start = s.start
    if prefix_len and start > 0 and text[start - 1] == "+":
        start -= 1
    # The prefix as written (digits and separator) is kept; only the number itself is masked.
    core_start = s.start + prefix_len + (1 if s.lengths[0] == prefix_len else 0)
    return PersonalData("phone", start, s.end, number, prefix=text[start:core_start])


def _bank_card(s: _Stretch) -> PersonalData | None:
    number, lengths = s.digits, s.lengths
    if not 13 <= len(number) <= 19:
        return None
    fours = len(lengths) >= 3 and all(n == 4 for n in lengths[:-1]) and lengths[-1] <= 4
    card_shaped = (
        len(lengths) == 1
        or fours
        or lengths in ((4, 6, 5), (4, 6, 4))
        or (len(lengths) == 2 and lengths[0] == 6)
    )
    if not card_shaped or not _one_separator(s) or len(set(number)) == 1:
        return None
    written_as_card = fours and s.whole_run and len(number) >= 16
    if not (written_as_card or _luhn_valid(number)):
        return None
    return PersonalData("bank_card", s.start, s.end, number)


def _ascii_digits(digits: str) -> str:
    # Full-width and other Unicode digits count, and are compared as ASCII.
    return digits if digits.isascii() else "".join(str(int(c)) for c in digits)


def _luhn_valid(number: str) -> bool:
    reverse = number[::-1]
    kept = sum(map(int, reverse[0::2]))
    doubled = sum(_LUHN_DOUBLED[int(c)] for c in reverse[1::2])
    return (kept + doubled) % 10 == 0


def _id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _real_date(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return born.year >= 1900
