"""The ad rules: keyword hits weighed against their context, links and contact ids.

Keyword decision (documented in docs/moderation.md):

1. Hits come from the word automaton over the compact text and from the pinyin automaton over
   the pinyin text. A hit inside a benign phrase (``这套现在``, ``待还款``) is dropped. A pinyin
   hit that uses a typed letter (``taoxian``, ``tao现``) is as strong as the term itself; one
   made of Han characters only (``淘现``, ``带还``) is a homophone and counts as weak, since
   real words share those sounds.
2. A message that gives a contact id or a link is an ad as soon as it has any hit.
3. Otherwise a warning or an inquiry (``骗``, ``违法``, ``能不能``) not inside a reassurance
   (``不是骗子``) means the message talks *about* ads: no ad.
4. Otherwise a strong hit is an ad; a weak hit is an ad when a strong cue lies within
   ``CUE_WINDOW`` characters, or a weak cue does and the message is not a question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.moderation.lexicon import Lexicon, Term
from bot.moderation.normalise import NormalisedText

__all__ = ["CUE_WINDOW", "find_ad_rule", "has_contact_id", "has_mobile", "links"]

CUE_WINDOW = 16  # compact characters between a weak term and the offer phrasing that makes it an ad

# Common and cheap top-level domains spam uses; a domain is letters/digits/hyphens joined by
# ".", "。" or "点" (people write "xx点com" to dodge link filters).
_TLDS = (
    "com|cn|net|org|cc|top|xyz|vip|me|io|info|shop|club|site|online|link|ly|co|tk|app|fun|ltd"
    "|pw|ink|wang|ren|biz|icu|live|tv|so|la|gg|to|im|asia|store|work|tech|pro|cloud|hk"
)
_LINK = re.compile(
    r"(?:https?://|www\s?\.)[^\s\u4e00-\u9fff]*"
    r"|(?<![a-z0-9@._-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\s?(?:\.|。|点|dot)\s?)+"
    rf"(?:{_TLDS})(?![a-z0-9])(?:/[^\s\u4e00-\u9fff]*)?"
)
_HOST = re.compile(r"^(?:https?://)?([^/?#\s]+)")
# A WeChat or QQ id after its name, as people dodge filters: 微信/威信/薇/V信/VX/wx/扣扣/QQ.
_CONTACT_ID = re.compile(
    r"(?:微信|威信|薇信|徽信|维信|微心|薇|v信|卫星|扣扣|企鹅|(?<![a-z])(?:vx|wx|weixin|wechat|qq|加v|\+v))"
    r"(?:号码|号|id)?[^a-z0-9\u4e00-\u9fff]{0,3}(?:是|为)?[^a-z0-9\u4e00-\u9fff]{0,3}"
    r"(?:[a-z][a-z0-9_-]{5,19}|\d{5,11})(?![a-z0-9_-])"
)
_EMAIL = re.compile(r"(?<![a-z0-9._-])[a-z0-9._-]{2,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})+")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def links(folded: str, allowed_domains: Iterable[str] = ()) -> list[str]:
    """Links in the folded text whose host is not one of ``allowed_domains`` (or under one)."""
    allowed = tuple(d.casefold().lstrip(".") for d in allowed_domains)
    found = []
    for m in _LINK.finditer(folded):
        host = _HOST.match(re.sub(r"\s|。|点|dot", ".", m[0]).replace("..", "."))
        name = host[1].removeprefix("www.") if host else m[0]
        if not any(name == d or name.endswith("." + d) for d in allowed):
            found.append(m[0])
    return found


def has_contact_id(folded: str) -> bool:
    """True when the text gives a WeChat or QQ id, or an e-mail address."""
    return bool(_CONTACT_ID.search(folded) or _EMAIL.search(folded))


def has_mobile(compact: str) -> bool:
    """True when a mobile number appears once spaces and symbols are gone (1 3 8-1234…)."""
    return bool(_MOBILE.search(compact))


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: str
    strength: str
    start: int  # compact indexes, end exclusive
    end: int


_Spans = list[tuple[int, int]]


def _scan(text: NormalisedText, lexicon: Lexicon) -> tuple[list[_Hit], dict[str, _Spans]]:
    hits: list[_Hit] = []
    cues: dict[str, _Spans] = {k: [] for k in ("strong_cue", "weak_cue", "warning", "assurance")}
    cues["benign"] = []
    literal: set[tuple[str, int, int]] = set()
    for end, (length, entries) in lexicon.words.iter(text.compact):
        start = end + 1 - length
        for entry in entries:
            if isinstance(entry, Term):
                hits.append(_Hit(entry.rule, entry.strength, start, end + 1))
                literal.add((entry.rule, start, end + 1))
            else:
                cues[entry].append((start, end + 1))
    if len(lexicon.sounds):
        hits.extend(_sound_hits(text, lexicon, literal))
    benign = cues["benign"]
    kept = [h for h in hits if not any(b0 <= h.start and h.end <= b1 for b0, b1 in benign)]
    return kept, cues


def _sound_hits(
    text: NormalisedText, lexicon: Lexicon, literal: set[tuple[str, int, int]]
) -> Iterable[_Hit]:
    pin, to_compact, starts = text.pinyin, text.pinyin_to_compact, text.syllable_starts
    for end, (length, rules) in lexicon.sounds.iter(pin):
        start = end + 1 - length
        if start not in starts or (end + 1 < len(pin) and end + 1 not in starts):
            continue  # not aligned on whole syllables: "xian" inside "xiang"
        c0, c1 = to_compact[start], to_compact[end] + 1
        typed = [ch for ch in text.compact[c0:c1] if "a" <= ch <= "z"]
        if typed and not _latin_bounded(text, c0, c1):
            continue  # letters inside a longer latin word: a name like "yangkai"
        for rule in rules:
            if any(r == rule and s <= c0 and c1 <= e for r, s, e in literal):
                continue
            yield _Hit(rule, "strong" if typed else "weak", c0, c1)


def _latin_bounded(text: NormalisedText, c0: int, c1: int) -> bool:
    folded, to_folded = text.folded, text.compact_to_folded
    before = to_folded[c0] - 1
    after = to_folded[c1 - 1] + 1
    return not (before >= 0 and "a" <= folded[before] <= "z") and not (
        after < len(folded) and "a" <= folded[after] <= "z"
    )


def _near(hit: _Hit, spans: _Spans) -> bool:
    return any(s - hit.end <= CUE_WINDOW and hit.start - e <= CUE_WINDOW for s, e in spans)


def find_ad_rule(text: NormalisedText, lexicon: Lexicon, *, contact: bool) -> str | None:
    """The rule id of the first keyword ad in ``text``, or None; ``contact``: an id or link."""
    hits, cues = _scan(text, lexicon)
    if not hits:
        return None
    hits.sort(key=lambda h: (h.strength != "strong", h.start))
    if contact:
        return hits[0].rule
    assured = cues["assurance"]
    warned = any(not any(a0 <= w0 and w1 <= a1 for a0, a1 in assured) for w0, w1 in cues["warning"])
    if warned:
        return None
    question: bool | None = None  # computed only when a weak cue needs it
    for hit in hits:
        if hit.strength == "strong" or _near(hit, cues["strong_cue"]):
            return hit.rule
        if _near(hit, cues["weak_cue"]):
            if question is None:
                question = lexicon.is_question(text.folded)
            if not question:
                return hit.rule
    return None
