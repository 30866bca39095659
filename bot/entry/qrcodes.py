"""Group join QR codes: fetched through the gateway, cached, refreshed before they expire.

A WeChat group QR code expires 7 days after it is generated. A cached payload older than
``refresh_after`` (6 days by default) is fetched again before it is served, so a code handed to
a visitor always has at least a day left. Payloads are rendered as SVG on the server (segno).
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import segno
from loguru import logger

from bot.entry.errors import EntryError
from bot.gateways.base import ChatGateway
from db.entry_repositories import QrCodeRepo
from scheduler.clock import Clock


class GroupQrCodes:
    """The current join QR payload of each group, cached in the database."""

    def __init__(
        self, repo: QrCodeRepo, gateway: ChatGateway, clock: Clock, refresh_after: timedelta
    ) -> None:
        self._repo = repo
        self._gateway = gateway
        self._clock = clock
        self._refresh_after = refresh_after

    async def payload(self, group_id: str) -> str:
        """The group's QR payload, refreshed through the gateway when missing or too old."""
        now = self._clock.now()
        cached = await asyncio.to_thread(self._repo.get, group_id)
        if cached is not None and now - cached.fetched_at < self._refresh_after:
            return cached.payload
        try:
            payload = await self._gateway.room_qrcode(group_id)
        except Exception as exc:
            logger.bind(group=group_id).opt(exception=exc).error("QR code refresh failed: {}", exc)
            raise EntryError(503, "qr_unavailable", "群二维码暂时获取不到，请稍后再试。") from exc
        await asyncio.to_thread(self._repo.put, group_id, payload, now)
        logger.bind(group=group_id).info("QR code {}", "fetched" if cached is None else "refreshed")
        return payload


def render_svg(payload: str, *, scale: int = 6, title: str = "入群二维码") -> str:
    """A standalone SVG document of the QR code for ``payload``."""
    out = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(
        out,
        kind="svg",
        scale=scale,
        border=2,
        xmldecl=True,
        svgns=True,
        title=title,
        svgclass="qr-code",
        lineclass=None,
    )
    return out.getvalue().decode("utf-8")


def render_png(payload: str, *, scale: int = 8) -> bytes:
    """A PNG of the QR code for ``payload``: phones recognise a QR code in an ``<img>``
    (WeChat's long-press 识别图中二维码), not in inline SVG."""
    out = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(out, kind="png", scale=scale, border=2)
    return out.getvalue()
