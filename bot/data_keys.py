"""Warning: a campaign ``data`` key that nothing reads.

``data`` is free context for the template, so a misspelt key is not a schema error: written
``radius`` for ``radius_m``, the default radius silently applies. A key that neither the
campaign's kind (the planner) nor its template (any branch, includes too) reads is a warning at
that key, with a did-you-mean over the keys that are read.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.campaigns import merchant_categories, planner_data_keys
from bot.opsdata.bundle import OpsData
from bot.opsdata.problems import Problem, did_you_mean
from bot.templating import template_data_use

if TYPE_CHECKING:
    from bot.config import Settings


def unused_data_keys(ops: OpsData, settings: Settings | None, now: datetime) -> list[Problem]:
    """One warning per ``data`` key neither the campaign's kind nor its template reads.

    A template that uses ``data`` as a whole (loops over it, passes it on) may read any key, and
    a template that does not parse is reported elsewhere: neither gets warnings here.
    """
    uses = {name: template_data_use(ops, name, now) for name in ops.templates}
    found: list[Problem] = []
    for campaign in sorted(ops.campaigns.values(), key=lambda c: c.id):
        source = ops.campaign_sources.get(campaign.id)
        use = uses.get(campaign.template)
        if source is None or use is None or use.data_opaque:
            continue
        by_kind = set(planner_data_keys(campaign.kind))
        if merchant_categories(campaign) is None:
            by_kind -= {"radius_m", "limit"}  # no merchants listed: nothing reads them
        for key in campaign.data:
            key = str(key)
            if key in by_kind or key in use.data_keys:
                continue
            known = planner_data_keys(campaign.kind) | use.data_keys
            if key in known:  # radius_m or limit, with no merchant category to apply them to
                message = (
                    f"data key {key!r} has no effect: campaign {campaign.id} lists no merchants "
                    "(set data.category to list some)"
                )
                found.append(source.warning(("data", key), message, at_key=True))
                continue
            message = (
                f"data key {key!r} is not used by kind {campaign.kind} nor template "
                f"{campaign.template}" + did_you_mean(key, known)
            )
            found.append(source.warning(("data", key), message, at_key=True))
    return found
