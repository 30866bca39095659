"""The ``moderation:`` block of config.yaml: the detector's limits and the strike policy.

Kept apart from the detector so that reading the configuration never imports the keyword
automata or pypinyin (a few hundred milliseconds): ``bot.config`` embeds this model.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from bot.opsdata.models import Duration

__all__ = ["ModerationSettings"]


class ModerationSettings(BaseModel):
    """Tunable limits of the detector and the strike policy (``moderation:`` in config.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_chars: int = Field(default=4000, ge=100, le=100_000)
    """Characters of a message that are read; a longer message is a flood (``flood.long``)."""
    flood_repeats: int = Field(default=3, ge=2, le=100)
    """The message that makes this many similar ones in the window is a flood."""
    flood_window: Duration = timedelta(minutes=10)
    flood_similarity: float = Field(default=0.8, gt=0, le=1)
    """Bigram Jaccard at or above which two messages count as the same."""
    allowed_domains: tuple[str, ...] = ()
    """Link hosts members may post (the bank's own site); subdomains included."""
    strikes_to_remove: int = Field(default=3, ge=1, le=100)
    """The ad or flood that makes this many strikes in ``strike_window`` removes the member."""
    strike_window: Duration = timedelta(days=30)
    """Strikes older than this no longer count."""
    remove_members: bool = True
    """False: strikes are counted and the manager told, but nobody is removed."""
    staff: tuple[str, ...] = ()
    """Contact ids exempt like managers (``entry.ops_contacts`` are exempt too)."""
