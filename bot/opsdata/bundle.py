"""The whole of the ops data, validated, as one immutable value that can be swapped atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bot.opsdata.models import (
    CalendarOverrides,
    Campaign,
    Channel,
    CustomerManager,
    FaqEntry,
    GazetteerCity,
    Merchant,
    ReferralProgramme,
    WelfareGroup,
)
from bot.opsdata.problems import Loc, Problem, YamlDoc


@dataclass(frozen=True)
class Source:
    """Where an entity was written: its file (with positions) and its path inside it."""

    doc: YamlDoc
    loc: Loc

    def problem(self, sub: Loc = (), message: str = "", *, at_key: bool = False) -> Problem:
        """An error at ``sub`` (a path of keys and indexes below the entity) in its file."""
        return self.doc.problem(self.loc + sub, message, at_key=at_key)

    def warning(self, sub: Loc = (), message: str = "", *, at_key: bool = False) -> Problem:
        """A warning at ``sub`` below the entity; ``()`` is the entity itself (its first key)."""
        return self.doc.warning(self.loc + sub, message, at_key=at_key)


@dataclass(frozen=True)
class OpsData:
    """Everything read from the campaigns and templates folders.

    ``templates`` maps a template name (path relative to the templates folder, e.g. ``meal.j2``)
    to its source text; rendering goes through :mod:`bot.templating`.
    """

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    groups: dict[str, WelfareGroup] = field(default_factory=dict)
    merchants: dict[str, Merchant] = field(default_factory=dict)
    managers: dict[str, CustomerManager] = field(default_factory=dict)
    faq: tuple[FaqEntry, ...] = ()
    referral: ReferralProgramme | None = None
    calendar: CalendarOverrides = field(default_factory=CalendarOverrides)
    templates: dict[str, str] = field(default_factory=dict)
    gazetteer: dict[str, GazetteerCity] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    campaigns_dir: Path | None = None
    templates_dir: Path | None = None
    # Where each campaign was written, for warnings located at the campaign's own lines.
    campaign_sources: dict[str, Source] = field(default_factory=dict, repr=False, compare=False)
    # Where each group was written, for errors at a group's own keys (e.g. its `account:`).
    group_sources: dict[str, Source] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def manager_contacts(self) -> frozenset[str]:
        """The chat contacts of every customer manager (once per ops-data version)."""
        return frozenset(m.contact for m in self.managers.values())

    def campaigns_of_kind(self, kind: str) -> list[Campaign]:
        """Enabled campaigns of one kind, in id order."""
        return [
            c
            for c in sorted(self.campaigns.values(), key=lambda c: c.id)
            if c.kind == kind and c.enabled
        ]

    def targets(self, campaign: Campaign, group: WelfareGroup) -> bool:
        """True when ``campaign`` reaches ``group`` (see :class:`~bot.opsdata.models.Targets`)."""
        t = campaign.targets
        if t.is_everyone():
            return True
        if group.id in t.groups:
            return True
        criteria = [c for c in (t.cities, t.districts, t.tags) if c]
        if not criteria:
            return False
        return (
            (not t.cities or group.city in t.cities)
            and (not t.districts or group.district in t.districts)
            and (not t.tags or bool(set(t.tags) & set(group.tags)))
        )

    def target_groups(self, campaign: Campaign) -> list[WelfareGroup]:
        """The groups a campaign reaches, in id order."""
        return [
            g for g in sorted(self.groups.values(), key=lambda g: g.id) if self.targets(campaign, g)
        ]
