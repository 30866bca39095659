"""The dispatcher's handlers: one small class per concern, each behind its own filter.

The composition root (bot/app.py ``Qunfu._handlers``) lists them in the order DESIGN.md sets:
membership bookkeeping (always runs), moderation (first for group messages), member commands
and opt-out, managers' replies to tickets, the entry flow, then FAQ and escalation, and last the
private help text. See docs/design-notes.md "Handler pipeline" for how to add one.
"""

from bot.handlers.base import Handler, HandlerContext, event_key
from bot.handlers.commands import JOIN_WORDS, JoinRequestHandler, PrivateHelpHandler
from bot.handlers.entry import EntryFlowHandler, RouteOffers
from bot.handlers.faq import FaqHandler
from bot.handlers.membership import MembershipHandler
from bot.handlers.moderation import ModerationHandler

__all__ = [
    "JOIN_WORDS",
    "EntryFlowHandler",
    "FaqHandler",
    "Handler",
    "HandlerContext",
    "JoinRequestHandler",
    "MembershipHandler",
    "ModerationHandler",
    "PrivateHelpHandler",
    "RouteOffers",
    "event_key",
]
