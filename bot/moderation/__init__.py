"""Group moderation: spam and illegal ads, personal data and flooding, and strikes.

A pure domain module: :class:`ModerationDetector` turns one message (text, sender role, kind,
recent history) into a :class:`Verdict`; :class:`StrikeBook` counts strikes under a
:class:`StrikePolicy` over a repository interface. The dispatcher handler that warns, removes
and tells the manager is built on these. See docs/moderation.md.
"""

from bot.moderation.detector import (
    MessageKind,
    ModerationDetector,
    ModerationSettings,
    Role,
    Verdict,
    VerdictClass,
)
from bot.moderation.flood import PastMessage, RecentMessages
from bot.moderation.lexicon import Lexicon, LexiconError, default_lexicon
from bot.moderation.strikes import (
    InMemoryStrikes,
    StrikeBook,
    StrikeDecision,
    StrikePolicy,
    StrikeRepository,
)

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
