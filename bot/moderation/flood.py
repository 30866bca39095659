"""Flooding: one member repeating the same or nearly the same text within a window.

:func:`is_flood` is pure: it compares a message with the member's recent messages in the same
group, which the caller passes in. :class:`RecentMessages` is a bounded in-memory store of
those, for a handler that has no table for them: it keeps at most ``repeats`` messages for each
of the ``capacity`` most recently active (group, member) pairs, so a million members cost a
bounded amount of memory and a pair that goes quiet falls out first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.moderation.normalise import normalise

__all__ = ["PastMessage", "RecentMessages", "is_flood", "signature", "similar"]

_SIGNATURE_CHARS = 500  # near-duplicates are decided on the head of a message
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")


@dataclass(frozen=True, slots=True)
class PastMessage:
    """An earlier message of the same member in the same group (aware ``at``)."""

    at: datetime
    text: str


def signature(text: str) -> str:
    """What two messages must share to be repeats: letters, digits and Han characters only,
    every digit read as 0 (a repeated ad varies its numbers); for a text with none of those
    (emoji only), the text without white space."""
    norm = normalise(text, _SIGNATURE_CHARS)
    return norm.compact.translate(_DIGITS_AS_ZERO) or "".join(norm.folded.split())


def _bigrams(s: str) -> set[str]:
    return {s[i : i + 2] for i in range(len(s) - 1)}


def similar(a: str, b: str, threshold: float) -> bool:
    """Same signature, or (both at least 4 characters) bigram Jaccard ≥ ``threshold``.

    Jaccard on character bigrams is linear in the text and shrugs off an added emoji or a
    changed digit, which is how repeated ads are varied to slip past exact matching.
    """
    if a == b:
        return True
    if min(len(a), len(b)) < 4:
        return False
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y) >= threshold


def is_flood(
    text: str,
    at: datetime,
    history: Sequence[PastMessage],
    *,
    repeats: int,
    window: timedelta,
    threshold: float,
) -> bool:
    """True when ``text`` is at least the ``repeats``-th similar message within ``window``."""
    if repeats <= 1:
        return True
    mine = signature(text)
    if not mine:
        return False
    copies = 1
    for past in history:
        if timedelta(0) <= at - past.at <= window and similar(
            mine, signature(past.text), threshold
        ):
            copies += 1
            if copies >= repeats:
                return True
    return False


class RecentMessages:
    """Bounded memory of each member's last few messages per group, for :func:`is_flood`."""

    def __init__(self, per_member: int = 5, capacity: int = 100_000) -> None:
        self._per_member = max(1, per_member)
        self._capacity = max(1, capacity)
        self._recent: OrderedDict[tuple[str, str], deque[PastMessage]] = OrderedDict()

    def history(self, group_id: str, member_id: str) -> list[PastMessage]:
        """The member's remembered messages in the group, newest last."""
        return list(self._recent.get((group_id, member_id), ()))

    def remember(self, group_id: str, member_id: str, message: PastMessage) -> None:
        """Add a message; the oldest of the member's, and the least recently active pair, go."""
        key = (group_id, member_id)
        kept = self._recent.pop(key, None) or deque(maxlen=self._per_member)
        kept.append(message)
        self._recent[key] = kept
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)
