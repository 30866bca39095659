"""FAQ matching: which ops-written answer fits a member's question, and how sure we are.

An index is built once per ops-data version (:meth:`FaqIndex.build`, called where a reload
prepares a version, in a worker thread) from the ``faq:`` entries. A question is matched two
ways and the evidence added up into one confidence:

* **BM25** (rank-bm25) over jieba tokens of each entry's question. The raw score
  is divided by the entry's score against its own tokens, so 1.0 means "every term of the
  entry is in the question" whatever the corpus size; question words and particles (怎么, 吗,
  的 ...) are dropped first, since every question has them.
* **Keywords**, found as substrings by an Aho-Corasick automaton (jieba may split a keyword
  the ops author meant whole: 被盗刷 → 被盗 / 刷); each distinct keyword of an entry adds
  ``keyword_weight``.

Only a confidence at or above ``faq.min_score`` is an answer; the caller escalates the rest.
Text is NFKC-normalised and lowercased (full-width ``？`` and letters match their ASCII forms)
and cut to a few hundred characters: a question is short, and a 100 KB paste must not keep the
event loop busy.

jieba loads its dictionary (about a second) the first time it cuts; :func:`tokens` does that
once per process, under jieba's own lock, and only where an index is built, off the loop.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick
import jieba
from rank_bm25 import BM25Okapi

from bot.config import FaqSettings
from bot.opsdata.models import FaqEntry

__all__ = [
    "FaqIndex",
    "FaqMatch",
    "TermSet",
    "is_question",
    "normalise",
    "strip_mentions",
    "tokens",
]

MAX_QUERY_CHARS = 300
"""Characters of a message looked at: enough for any question, bounded for huge pastes."""

_MENTION = re.compile(r"@\S+\s?")
# Words every question has: they say *that* it is a question, not *what* it is about.
# fmt: off
_STOPWORDS = frozenset((
    "怎么", "怎样", "如何", "什么", "为什么", "哪", "哪里", "哪天", "多少", "几", "能", "能不能",
    "可以", "可不可以", "是不是", "有没有", "是否", "请问", "吗", "呢", "吧", "啊", "呀", "哦",
    "了", "的", "地", "得", "和", "与", "及", "或", "是", "在", "有", "我", "我们", "你", "你们",
    "您", "他", "她", "它", "这", "那", "这个", "那个", "一下", "想", "要", "请", "下", "就",
    "都", "也", "还", "又", "把", "被", "给", "让", "怎么办", "办",
))
# fmt: on
jieba.setLogLevel(logging.WARNING)  # no dictionary-loading chatter in the bot's logs


def strip_mentions(text: str) -> str:
    """``text`` without its @-mentions (``@群福助手 年费?`` → ``年费?``)."""
    return _MENTION.sub("", text).strip()


def normalise(text: str) -> str:
    """The text as matching sees it: @-mentions removed, NFKC, lowercase, bounded length."""
    text = _MENTION.sub(" ", text[: MAX_QUERY_CHARS * 2])
    text = unicodedata.normalize("NFKC", text).lower()
    # Lone surrogates cannot be encoded or cut by jieba; they carry no meaning.
    text = text.encode("utf-8", "ignore").decode("utf-8")
    return text[:MAX_QUERY_CHARS]


def tokens(text: str) -> list[str]:
    """Content tokens of normalised ``text`` (jieba; no punctuation, spaces or stopwords)."""
    return [t for t in jieba.lcut(text) if t.strip() and t not in _STOPWORDS and _wordy(t)]


def _wordy(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


class TermSet:
    """A fixed list of words found as substrings in one pass (pyahocorasick)."""

    def __init__(self, words: Iterable[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        self.words = tuple(dict.fromkeys(w for w in (normalise(w).strip() for w in words) if w))
        for w in self.words:
            self._automaton.add_word(w, w)
        if self.words:
            self._automaton.make_automaton()

    def found(self, normalised: str) -> set[str]:
        """The words of the set that occur in ``normalised`` (see :func:`normalise`)."""
        if not self.words:
            return set()
        return {w for _, w in self._automaton.iter(normalised)}

    def any_in(self, normalised: str) -> bool:
        """Whether any word of the set occurs in ``normalised``."""
        if not self.words:
            return False
        return next(self._automaton.iter(normalised), None) is not None


def is_question(normalised: str, question_words: TermSet) -> bool:
    """A question mark or a question word (怎么, 吗 ...) in normalised text."""
    return "?" in normalised or question_words.any_in(normalised)


@dataclass(frozen=True)
class FaqMatch:
    """The best entry for a question and the evidence for it."""

    entry: FaqEntry
    score: float
    """Confidence: BM25 coverage (0–1) plus ``keyword_weight`` per keyword found."""
    bm25: float
    keywords: tuple[str, ...]


class FaqIndex:
    """The FAQ of one ops-data version, ready to match questions (see the module docstring)."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        min_score: float = 0.5,
        keyword_weight: float = 0.5,
    ) -> None:
        self.entries = tuple(entries)
        self.min_score = min_score
        self.keyword_weight = keyword_weight
        self._docs = [tokens(normalise(e.question)) for e in entries]
        self._bm25 = BM25Okapi(self._docs) if any(self._docs) else None
        self._self = (
            [float(self._bm25.get_scores(d)[i]) if d else 0.0 for i, d in enumerate(self._docs)]
            if self._bm25 is not None
            else []
        )
        self._keywords = TermSet(k for e in entries for k in e.keywords)
        self._entry_keywords = [{normalise(k).strip() for k in e.keywords} for e in entries]

    @classmethod
    def build(cls, entries: Sequence[FaqEntry], settings: FaqSettings) -> FaqIndex:
        """The index for ``entries`` with the configured weights (slow: run it off the loop)."""
        return cls(entries, min_score=settings.min_score, keyword_weight=settings.keyword_weight)

    def has_keyword(self, normalised: str) -> bool:
        """Whether normalised text names any FAQ keyword (a FAQ topic)."""
        return self._keywords.any_in(normalised)

    def best(self, question: str) -> FaqMatch | None:
        """The most confident entry for ``question`` (raw text), whatever its score."""
        if not self.entries:
            return None
        text = normalise(question)
        found = self._keywords.found(text)
        query = tokens(text)
        scores = self._bm25.get_scores(query) if self._bm25 is not None and query else None
        best: FaqMatch | None = None
        for i, entry in enumerate(self.entries):
            coverage = self._coverage(i, query, None if scores is None else float(scores[i]))
            hits = tuple(sorted(found & self._entry_keywords[i]))
            score = coverage + self.keyword_weight * len(hits)
            if best is None or score > best.score:
                best = FaqMatch(entry, round(score, 4), round(coverage, 4), hits)
        return best

    def answer(self, question: str) -> FaqMatch | None:
        """The best entry when it is confident enough to answer with, else None."""
        match = self.best(question)
        return match if match is not None and match.score >= self.min_score else None

    def _coverage(self, i: int, query: list[str], score: float | None) -> float:
        doc = self._docs[i]
        if not doc or not query:
            return 0.0
        own = self._self[i]
        if score is not None and own > 0:
            return max(0.0, min(1.0, score / own))
        # A corpus too small for IDF (one entry, or a term in every entry): plain overlap.
        return len(set(doc) & set(query)) / len(set(doc))
