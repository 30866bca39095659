"""The moderation detector: one message in, one verdict out. Pure, no I/O, thread-safe.

Order of the checks, first match wins:

1. Staff and managers: only ID card and bank card numbers are reported (``personal_data``);
   nothing they post is an ad or a flood, and their own phone numbers are theirs to give.
2. Message kinds that are ads in themselves for members: an image with a QR code, a contact
   card, a link card (unless its links are all on allowed domains).
3. Text ads: keyword rules in context (:mod:`bot.moderation.rules`), then links, then WeChat /
   QQ ids and e-mail addresses.
4. Personal data (:func:`bot.privacy.find_personal_data`): ID card, then bank card, then phone.
5. Flooding: the same or nearly the same text repeated, or a text longer than ``max_chars``.

Only the first ``max_chars`` characters are read, so a 100 KB message costs what 4,000
characters cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.events import MessageKind
from bot.moderation.flood import PastMessage, is_flood
from bot.moderation.lexicon import Lexicon, default_lexicon
from bot.moderation.normalise import normalise
from bot.moderation.rules import find_ad_rule, has_contact_id, links
from bot.moderation.settings import ModerationSettings
from bot.privacy import find_personal_data

__all__ = [
    "MessageKind",
    "ModerationDetector",
    "ModerationSettings",
    "Role",
    "Verdict",
    "VerdictClass",
]

VerdictClass = Literal["ok", "ad", "personal_data", "flood"]
Role = Literal["member", "staff", "manager"]

_KIND_RULES: dict[str, str] = {
    "image_qr": "ad.qr_image",
    "contact_card": "ad.contact_card",
    "link_card": "ad.link_card",
}
_STAFF_REPORTED = ("id_card", "bank_card")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the detector decided: class, rule id and the Chinese reason a warning names.

    ``reason`` comes from the lexicon, never from the message: a warning built from it cannot
    repeat the ad or the personal data.
    """

    category: VerdictClass
    rule: str
    reason: str

    @property
    def flagged(self) -> bool:
        """True for anything but ``ok``."""
        return self.category != "ok"


OK = Verdict("ok", "ok", "")


class ModerationDetector:
    """Classifies group messages; build once (the automata compile) and share."""

    def __init__(
        self, settings: ModerationSettings | None = None, lexicon: Lexicon | None = None
    ) -> None:
        self.settings = settings or ModerationSettings()
        self.lexicon = lexicon or default_lexicon()

    def check(
        self,
        text: str,
        *,
        role: Role = "member",
        kind: MessageKind = "text",
        at: datetime | None = None,
        history: Sequence[PastMessage] = (),
    ) -> Verdict:
        """The verdict on one group message.

        ``history``: the sender's earlier messages in the same group (any order); flooding is
        judged only when ``at``, the time of this message, is given. ``text`` may be anything a
        platform delivers (empty, huge, binary-looking, lone surrogates): it never raises.
        """
        text = text if isinstance(text, str) else ""
        head = text[: self.settings.max_chars]
        if role != "member":
            return self._personal_data(head, _STAFF_REPORTED)
        if kind in _KIND_RULES:
            rule = _KIND_RULES[kind]
            on_allowed = kind == "link_card" and self._only_allowed_links(head)
            if not on_allowed:
                return self._verdict("ad", rule)
        if rule_id := self._ad_rule(head):
            return self._verdict("ad", rule_id)
        found = self._personal_data(head)
        if found.flagged:
            return found
        if len(text) > self.settings.max_chars:
            return self._verdict("flood", "flood.long")
        if at is not None and history and self._repeated(head, at, history):
            return self._verdict("flood", "flood.repeat")
        return OK

    def _ad_rule(self, head: str) -> str | None:
        norm = normalise(head, self.settings.max_chars)
        if not norm.compact:
            return None
        found_links = links(norm.folded, self.settings.allowed_domains)
        contact = has_contact_id(norm.folded)
        if rule := find_ad_rule(norm, self.lexicon, contact=contact or bool(found_links)):
            return rule
        if found_links:
            return "ad.link"
        return "ad.contact_id" if contact else None

    def _only_allowed_links(self, head: str) -> bool:
        folded = normalise(head, self.settings.max_chars).folded
        return bool(links(folded)) and not links(folded, self.settings.allowed_domains)

    def _personal_data(self, head: str, kinds: Sequence[str] | None = None) -> Verdict:
        found = {item.kind for item in find_personal_data(head)}
        for kind in ("id_card", "bank_card", "phone"):
            if kind in found and (kinds is None or kind in kinds):
                return self._verdict("personal_data", f"personal_data.{kind}")
        return OK

    def _repeated(self, head: str, at: datetime, history: Sequence[PastMessage]) -> bool:
        s = self.settings
        return is_flood(
            head,
            at,
            history,
            repeats=s.flood_repeats,
            window=s.flood_window,
            threshold=s.flood_similarity,
        )

    def _verdict(self, category: VerdictClass, rule: str) -> Verdict:
        return Verdict(category, rule, self.lexicon.reason(rule))
