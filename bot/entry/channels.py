"""Traffic channels (campaigns/channels.yaml) and the checks a live-code link must pass."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from bot.entry.errors import bad_request, not_found
from bot.opsdata.models import Channel

MISSING_CHANNEL = "链接不完整（缺少渠道信息），请从银行官方入口重新打开。"
BAD_CHANNEL = "链接中的渠道信息有误，请从银行官方入口重新打开。"
_CHANNEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


def normalise_channel(channel_id: str) -> str:
    """A channel id as a slightly damaged link may carry it, made canonical.

    Links are retyped, pasted into SMS and chats, and end up as ``WX-MENU``, ``sms-alert。`` or
    ``sms-alert.``: the id is trimmed (full-width spaces too), lowercased, and trailing
    punctuation (ASCII or full-width) is dropped, so the visitor still reaches the page.
    """
    text = unicodedata.normalize("NFKC", channel_id).strip().lower()
    # "-" is punctuation too, but it belongs to ids (``wx-menu``): it is kept.
    while text and text[-1] != "-" and unicodedata.category(text[-1])[0] in "PZ":
        text = text[:-1].rstrip()
    return text


def resolve_channel(channels: Mapping[str, Channel], channel_id: object) -> Channel:
    """The enabled channel named by a live-code link; a Chinese refusal otherwise."""
    if channel_id is None or channel_id == "":
        raise bad_request("missing_channel", MISSING_CHANNEL)
    if not isinstance(channel_id, str):
        raise bad_request("bad_channel", BAD_CHANNEL)
    normal = normalise_channel(channel_id)
    if not normal:
        raise bad_request("missing_channel", MISSING_CHANNEL)
    if not _CHANNEL_ID.match(normal):
        raise bad_request("bad_channel", BAD_CHANNEL)
    channel = channels.get(normal)
    if channel is None or not channel.enabled:
        raise not_found("unknown_channel", "未知的入口渠道，请从银行官方入口重新打开。")
    return channel
