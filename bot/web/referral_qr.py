"""``GET /r/{code}/qr.svg`` and ``qr.png``: the QR image of a member's referral link
(``我的邀请`` sends the ``qr.svg`` address).

The URL holds nothing but the signed code; a forged or revoked code gets 404, so the route
cannot be used to mint QR images of arbitrary links. A member who opens the address in WeChat
(a browser navigation: ``Accept: text/html``) gets a small Chinese page showing the code as a
PNG, which WeChat lets them long-press to save or forward; an SVG shown bare cannot be.
"""

from __future__ import annotations

import html

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bot.entry.errors import EntryError
from bot.entry.qrcodes import render_png, render_svg
from bot.web.app import error_page, plain_page, wants_html

router = APIRouter()

TITLE = "邀请二维码"
_CACHE = {"Cache-Control": "private, max-age=3600"}

_ABOUT = (
    "<p>长按图片可保存或发送给朋友。朋友扫码后可选择附近的福利群，邀请成功会计入您的邀请进度。</p>\n"
    '<div class="qr"><img src="{png}" alt="邀请二维码（邀请码 {code}）"></div>\n'
    "<p>邀请码：<strong>{code}</strong></p>\n"
    '<p>也可以直接分享邀请链接：<br><a href="{link}">{link}</a></p>'
)


async def _link(request: Request, code: str) -> str | Response:
    """The referral link for a valid ``code``; a 404 response (Chinese page for a browser,
    JSON otherwise) when the code was not issued or no referral channel is open."""
    bot = request.app.state.bot
    try:
        await anyio.to_thread.run_sync(bot.referral_codes.verify, code)
    except EntryError as exc:
        error, reason = exc.code, exc.message
    else:
        link = bot.referral_notices.link(code.strip().upper())
        if link is not None:
            return str(link)
        error, reason = "no_referral_channel", "邀请有礼活动暂未开放，暂时不能分享邀请二维码。"
    if wants_html(request):
        return HTMLResponse(error_page("无法显示邀请二维码", reason), status_code=404)
    return JSONResponse({"ok": False, "error": error, "reason": reason}, status_code=404)


@router.get("/r/{code}/qr.svg", include_in_schema=False)
async def referral_qr(request: Request, code: str) -> Response:
    """The SVG QR code of the referral link for ``code`` (a page around its PNG for a
    browser); 404 for a code not issued."""
    link = await _link(request, code)
    if isinstance(link, Response):
        return link
    if wants_html(request):
        normal = code.strip().upper()
        body = _ABOUT.format(
            png=html.escape(f"/r/{normal}/qr.png"), code=html.escape(normal), link=html.escape(link)
        )
        return HTMLResponse(plain_page("我的邀请二维码", body), headers=_CACHE)
    svg = await anyio.to_thread.run_sync(lambda: render_svg(link, title=TITLE))
    return Response(svg, media_type="image/svg+xml", headers=_CACHE)


@router.get("/r/{code}/qr.png", include_in_schema=False)
async def referral_qr_png(request: Request, code: str) -> Response:
    """The referral link's QR code as PNG (what the page shows); same rules as ``qr.svg``."""
    link = await _link(request, code)
    if isinstance(link, Response):
        return link
    png = await anyio.to_thread.run_sync(render_png, link)
    return Response(png, media_type="image/png", headers=_CACHE)
