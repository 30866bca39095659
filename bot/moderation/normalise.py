"""Text normalised against the usual spam evasions, in the three forms the rules read.

- ``folded``: the first ``max_chars`` characters, lone surrogates dropped, NFKC (full-width
  letters and digits, circled letters, compatibility forms) and case-folded. Links, WeChat ids
  and question marks are read here, where spaces and punctuation still separate things.
- ``compact``: ``folded`` keeping only Han characters, ASCII letters and digits, so spaces,
  symbols and emoji put between characters (``套 现``, ``套-现``, ``套💰现``) vanish. Keyword
  automata run over it.
- ``pinyin``: ``compact`` with every Han character replaced by its toneless pinyin (first
  reading, ``ü`` as ``v``), letters kept and digits as a break, so ``taoxian``, ``tao现`` and
  ``淘现`` all read ``taoxian``. Per-character readings, not phrase-aware ones: the same
  character always reads the same, which is what matching against the keyword list needs, and
  it is a table look-up rather than a segmentation.

Every index of ``compact`` maps back to ``folded``, and every index of ``pinyin`` to ``compact``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from pypinyin import Style, lazy_pinyin

__all__ = ["NormalisedText", "is_han", "normalise", "syllable"]

_SURROGATES = re.compile("[\ud800-\udfff]")
_PINYIN_BREAK = "#"  # stands for a digit in the pinyin form; no keyword contains it


def is_han(ch: str) -> bool:
    """True for a CJK ideograph (basic block, extension A, compatibility ideographs)."""
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF


@cache  # bounded by the number of Han characters (~30,000)
def syllable(ch: str) -> str:
    """Toneless pinyin of one Han character, its first reading; ``ü`` is written ``v``."""
    # A rare character pypinyin has no reading for gives no syllable (the character stays
    # in the compact form, so exact-keyword matching still sees it).
    readings = lazy_pinyin(ch, style=Style.NORMAL, v_to_u=False, errors="ignore") if ch else []
    return readings[0] if readings else ""


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """One message in its folded, compact and pinyin forms, with index maps between them."""

    folded: str
    compact: str
    compact_to_folded: tuple[int, ...]
    pinyin: str
    pinyin_to_compact: tuple[int, ...]
    syllable_starts: frozenset[int]
    """Indexes of ``pinyin`` where a unit (one Han syllable or one letter) starts."""
    truncated: bool
    """The original text was longer than the limit and only its head was read."""


def normalise(text: str, max_chars: int) -> NormalisedText:
    """Normalise the first ``max_chars`` characters of ``text``; never raises on any str."""
    head = text[:max_chars]
    truncated = len(text) > max_chars
    folded = unicodedata.normalize("NFKC", _SURROGATES.sub("", head)).casefold()
    compact_chars: list[str] = []
    to_folded: list[int] = []
    pinyin_parts: list[str] = []
    to_compact: list[int] = []
    starts: set[int] = set()
    pin_len = 0
    for i, ch in enumerate(folded):
        if is_han(ch):
            unit = syllable(ch) or _PINYIN_BREAK
        elif "a" <= ch <= "z":
            unit = ch
        elif "0" <= ch <= "9":
            unit = _PINYIN_BREAK
        else:
            continue
        k = len(compact_chars)
        compact_chars.append(ch)
        to_folded.append(i)
        starts.add(pin_len)
        pinyin_parts.append(unit)
        to_compact.extend([k] * len(unit))
        pin_len += len(unit)
    return NormalisedText(
        folded=folded,
        compact="".join(compact_chars),
        compact_to_folded=tuple(to_folded),
        pinyin="".join(pinyin_parts),
        pinyin_to_compact=tuple(to_compact),
        syllable_starts=frozenset(starts),
        truncated=truncated,
    )
