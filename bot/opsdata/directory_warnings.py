"""Warnings about the groups directory that only the deployment settings reveal.

A question the bot cannot answer becomes a ticket for the group's customer manager
(``manager:``); a group without one sends its tickets to ``entry.ops_contacts`` in config.yaml
(see :mod:`bot.tickets`). With neither, the ticket reaches nobody.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.opsdata.bundle import OpsData
from bot.opsdata.problems import Problem

if TYPE_CHECKING:
    from bot.config import Settings

_EXAMPLES = 3


def unreachable_escalations(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    """One warning at the first group whose tickets reach nobody: no manager the directory
    knows, and no ``entry.ops_contacts``; it counts and names such groups."""
    if settings.entry.ops_contacts:
        return []
    orphans = sorted(
        (g for g in ops.groups.values() if g.manager is None or g.manager not in ops.managers),
        key=lambda g: g.id,
    )
    located = [g for g in orphans if g.id in ops.group_sources]
    if not located:
        return []
    first = min(located, key=lambda g: _position(ops, g.id))
    ids = [g.id for g in orphans]
    shown = ", ".join(ids[:_EXAMPLES]) + (", …" if len(ids) > _EXAMPLES else "")
    return [
        ops.group_sources[first.id].warning(
            ("id",),
            f"{len(ids)} group(s) have no `manager:` the directory knows ({shown}) and "
            "config.yaml has no "
            "entry.ops_contacts: a question the bot cannot answer there becomes a ticket that "
            "reaches nobody; give each group a manager, or list ops contacts in "
            "entry.ops_contacts",
        )
    ]


def _position(ops: OpsData, group_id: str) -> tuple[str, int, int]:
    p = ops.group_sources[group_id].warning((), "")
    return str(p.path), p.line, p.col
