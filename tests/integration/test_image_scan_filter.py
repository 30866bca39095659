"""Which group images the gateway fetches and scans for QR codes: those moderation could act on
(a welfare group, a sender who is not staff, a manager or the bot). Staff pictures used to be
downloaded and decoded for nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig


def test_images_are_scanned_only_where_moderation_could_act(tmp_path: Path) -> None:
    settings = bot_settings(
        copy_ops(tmp_path),
        entry={"ops_contacts": ["ops-wang"]},
        moderation={"staff": ["staff-li"]},
    )
    rig = make_rig(settings, datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI))
    group = next(iter(rig.bot.ops.groups))
    manager = next(iter(rig.bot.ops.managers.values())).contact
    may = rig.bot.may_moderate
    assert may(group, "wxid_member")
    assert not may(group, "ops-wang") and not may(group, "staff-li")
    assert not may(group, manager) and not may(group, settings.bot.id)
    assert not may("not-a-welfare-group", "wxid_member")
    rig.bot.close()
