"""Warnings: checks that run on valid ops data and find what will not do what its author meant.

Each check takes the loaded ops data, the settings and the current instant, and returns
problems with ``severity="warning"`` located at the lines they are about. ``qunfu check`` runs
every check in :data:`CHECKS`; a check is added by appending it there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.opsdata.bundle import OpsData
from bot.opsdata.problems import Problem

if TYPE_CHECKING:
    from bot.config import Settings

Check = Callable[[OpsData, "Settings", datetime], list[Problem]]

CHECKS: list[Check] = []


def warnings(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    """Every warning of every registered check, in file and line order."""
    found: list[Problem] = []
    for check in CHECKS:
        found += check(ops, settings, now)
    return sorted(dict.fromkeys(found), key=lambda p: (str(p.path), p.line, p.col, p.message))


def _unused_data_keys(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    from bot.data_keys import unused_data_keys  # late: only a check pulls in the planner

    return unused_data_keys(ops, settings, now)


CHECKS.append(_unused_data_keys)


def _silent_campaigns(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    from bot.campaign_warnings import campaign_warnings  # late: only a check pulls in the planner

    return campaign_warnings(ops, settings, now)


CHECKS.append(_silent_campaigns)


def _capacity(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    from bot.capacity import capacity_warnings  # late: only a check pulls in the planner

    return capacity_warnings(ops, settings, now)


CHECKS.append(_capacity)


def _unreachable_escalations(ops: OpsData, settings: Settings, now: datetime) -> list[Problem]:
    from bot.opsdata.directory_warnings import unreachable_escalations

    return unreachable_escalations(ops, settings, now)


CHECKS.append(_unreachable_escalations)
