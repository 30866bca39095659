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
from typing import TYPE_CHECKING, Any

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
