"""Group moderation: spam and illegal ads, personal data and flooding, and strikes.

A pure domain module: :class:`ModerationDetector` turns one message (text, sender role, kind,
recent history) into a :class:`Verdict`; :class:`StrikeBook` counts strikes under a
:class:`StrikePolicy` over a repository interface. The dispatcher handler that warns, removes
and tells the manager is built on these. See docs/moderation.md.

Names are imported on first use (PEP 562), so ``bot.config`` can embed
:class:`ModerationSettings` without loading the keyword automata and pypinyin.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# Moderation asks pypinyin for one character at a time, which never reads its phrase dictionary
# (no phrase is one character long; every character's readings are the same without it), and
# never edits pypinyin's dictionaries. Skipping the phrases and the defensive copies (pypinyin's
# documented switches, read when pypinyin is first imported, which only this package does)
# saves about 43 MB per process.
os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")

if TYPE_CHECKING:
    from bot.moderation.detector import (
        MessageKind,
        ModerationDetector,
        Role,
        Verdict,
        VerdictClass,
    )
    from bot.moderation.flood import PastMessage, RecentMessages
    from bot.moderation.lexicon import Lexicon, LexiconError, default_lexicon
    from bot.moderation.settings import ModerationSettings
    from bot.moderation.strikes import (
        InMemoryStrikes,
        StrikeBook,
        StrikeDecision,
        StrikePolicy,
        StrikeRepository,
    )

_HOMES = {
    "MessageKind": "detector",
    "ModerationDetector": "detector",
    "Role": "detector",
    "Verdict": "detector",
    "VerdictClass": "detector",
    "PastMessage": "flood",
    "RecentMessages": "flood",
    "Lexicon": "lexicon",
    "LexiconError": "lexicon",
    "default_lexicon": "lexicon",
    "ModerationSettings": "settings",
    "InMemoryStrikes": "strikes",
    "StrikeBook": "strikes",
    "StrikeDecision": "strikes",
    "StrikePolicy": "strikes",
    "StrikeRepository": "strikes",
}

__all__ = [
    "InMemoryStrikes",
    "Lexicon",
    "LexiconError",
    "MessageKind",
    "ModerationDetector",
    "ModerationSettings",
    "PastMessage",
    "RecentMessages",
    "Role",
    "StrikeBook",
    "StrikeDecision",
    "StrikePolicy",
    "StrikeRepository",
    "Verdict",
    "VerdictClass",
    "default_lexicon",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bot.moderation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bot.moderation.{home}"), name)
    globals()[name] = value  # once
    return value
