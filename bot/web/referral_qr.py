"""``GET /r/{code}/qr.svg``: the QR image of a member's referral link (``我的邀请`` sends it).

The URL holds nothing but the signed code; a forged or revoked code gets 404, so the route
cannot be used to mint QR images of arbitrary links.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.entry.errors import EntryError
from bot.entry.qrcodes import render_svg

router = APIRouter()


@router.get("/r/{code}/qr.svg", include_in_schema=False)
async def referral_qr(request: Request, code: str) -> Response:
    """The SVG QR code of the referral link for ``code``; 404 for a code not issued."""
    bot = request.app.state.bot
    try:
        await anyio.to_thread.run_sync(bot.referral_codes.verify, code)
    except EntryError as exc:
        return JSONResponse(
            {"ok": False, "error": exc.code, "reason": exc.message}, status_code=404
        )
    link = bot.referral_notices.link(code.strip().upper())
    if link is None:
        return JSONResponse({"ok": False, "error": "no_referral_channel"}, status_code=404)
    svg = await anyio.to_thread.run_sync(render_svg, link)
    return Response(
        svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"}
    )
