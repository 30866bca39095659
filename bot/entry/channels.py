"""Traffic channels (campaigns/channels.yaml) and the checks a live-code link must pass."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.entry.errors import bad_request, not_found
from bot.opsdata.models import Channel

_CHANNEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


def resolve_channel(channels: Mapping[str, Channel], channel_id: object) -> Channel:
    """The enabled channel named by a live-code link; a Chinese refusal otherwise."""
    if channel_id is None or channel_id == "":
        raise bad_request(
            "missing_channel", "链接缺少渠道参数（channel），请从银行官方入口重新打开。"
        )
    if not isinstance(channel_id, str) or not _CHANNEL_ID.match(channel_id):
        raise bad_request("bad_channel", "渠道参数格式不正确，请从银行官方入口重新打开。")
    channel = channels.get(channel_id)
    if channel is None or not channel.enabled:
        raise not_found("unknown_channel", "未知的入口渠道，请从银行官方入口重新打开。")
    return channel
