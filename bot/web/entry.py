"""The live-code entry page and its JSON API (``/join``, ``/api/route``, ``/api/choose``, QR codes).

A thin shell over :class:`bot.entry.EntryService` (``request.app.state.bot.entry``): parse,
call, shape the answer. Every refusal is ``{"error": code, "message": "<中文>"}`` with a 4xx
(or 503) status, logged without personal data. The page is rendered by an autoescaping Jinja
environment of its own (ops templates use the sandboxed one), so names are always text.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from loguru import logger

from bot.entry import EntryError, EntryService
from bot.entry.qrcodes import render_png
from bot.entry.requests import parse_route_request
from bot.templating import distance, radius_text

router = APIRouter()

_HERE = Path(__file__).parent
_STATIC = _HERE / "static"
_ASSETS = {"entry.js": "text/javascript; charset=utf-8", "entry.css": "text/css; charset=utf-8"}
BOT_QR_PATH = "/join/bot-qr.png"
_pages = Environment(
    loader=FileSystemLoader(_HERE / "pages"), autoescape=select_autoescape(["html"], default=True)
)


def _service(request: Request) -> EntryService:
    return request.app.state.bot.entry  # type: ignore[no-any-return]


def _refusal(request: Request, err: EntryError) -> JSONResponse:
    logger.bind(path=request.url.path, code=err.code, status=err.status).warning(
        "entry: refused: {}", err.code
    )
    return JSONResponse({"error": err.code, "message": err.message}, status_code=err.status)


def _cities(service: EntryService) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "districts": [d.name for d in c.districts]}
        for c in service.gazetteer.cities()
    ]


@router.get("/join", response_class=HTMLResponse, include_in_schema=False)
async def join_page(
    request: Request, channel: str | None = None, ref: str | None = None
) -> HTMLResponse:
    """The live code's landing page; a bad link still gets the page, with the reason shown."""
    service = _service(request)
    bot = request.app.state.bot
    status, error, entry, channel_name = 200, None, None, None
    try:
        visit = await service.visit(channel, ref)
        entry, channel_name = visit.id, bot.ops.channels[visit.channel].name
    except EntryError as err:
        _refusal(request, err)
        status, error = err.status, err.message
    entry_settings = bot.settings.entry
    data = {
        # The canonical id: a retyped link (``WX-MENU``, ``sms-alert。``) is used as its channel.
        "channel": visit.channel if entry else None,
        "ref": ref if entry else None,
        "entry": entry,
        "cities": _cities(service),
        "error": error,
        "bot_name": bot.settings.bot.name,
        "bot_wechat_id": entry_settings.bot_wechat_id,
        "bot_qr_url": BOT_QR_PATH if entry_settings.bot_contact_qr else None,
    }
    html = _pages.get_template("entry.html").render(
        data=data, error=error, channel_name=channel_name, bot_name=bot.settings.bot.name
    )
    return HTMLResponse(html, status_code=status)


@router.get("/join/static/{name}", include_in_schema=False)
async def join_asset(name: str) -> Response:
    if name not in _ASSETS:
        return JSONResponse({"error": "not_found", "message": "没有这个文件。"}, status_code=404)
    return FileResponse(_STATIC / name, media_type=_ASSETS[name])


@router.get("/api/gazetteer")
async def gazetteer(request: Request) -> dict[str, Any]:
    """Cities and their districts, for the pickers."""
    return {"cities": _cities(_service(request))}


async def _json_body(request: Request) -> object:
    try:
        return await request.json()
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is an integer too long to
        # read, and absurd nesting is a RecursionError: all are a malformed body, never a 500.
        raise EntryError(400, "bad_body", "请求格式不正确：应为 JSON 对象。") from None


@router.post("/api/route")
async def route(request: Request) -> JSONResponse:
    """Nearest groups with room for ``{channel, ref?, entry?, lat, lon, crs}``, ``{..., address}``
    or ``{..., city, district}``; records the visit (if new) and the location."""
    try:
        answer = await _service(request).route(parse_route_request(await _json_body(request)))
    except EntryError as err:
        return _refusal(request, err)
    # Shallow, by hand: dataclasses.asdict deep-copies every value and was a tenth of a request.
    body = {f.name: getattr(answer, f.name) for f in fields(answer) if f.name != "offers"}
    # Distances are worded on the server, the same way the bot words them in chats.
    body["radius_text"] = radius_text(answer.radius_m)
    body["groups"] = [
        {
            "group": o.group_id,
            **{k: v for k, v in vars(o).items() if k != "group_id"},
            "distance_text": distance(o.distance_m),
        }
        for o in answer.offers
    ]
    return JSONResponse(body)


@router.post("/api/choose")
async def choose(request: Request) -> JSONResponse:
    """``{entry, group}``: records the choice; says how to join (QR URL, or invite code)."""
    try:
        data = await _json_body(request)
        if not isinstance(data, dict) or not isinstance(data.get("group"), str):
            raise EntryError(400, "missing_group", "请先选择一个福利群。")
        choice = await _service(request).choose(data.get("entry"), data["group"])
    except EntryError as err:
        return _refusal(request, err)
    body = asdict(choice)
    body["group"] = body.pop("group_id")
    if choice.join == "qr":
        body["qr_url"] = f"/api/groups/{choice.group_id}/qr.svg?entry={choice.entry}"
        # The page shows the PNG in an <img>: WeChat's long-press 识别图中二维码 reads images.
        body["qr_png_url"] = f"/api/groups/{choice.group_id}/qr.png?entry={choice.entry}"
    return JSONResponse(body)


@router.get("/api/groups/{group_id}/qr.svg")
async def group_qr(request: Request, group_id: str, entry: str | None = None) -> Response:
    """The group's join QR code as SVG (records "group chosen"); 409 when the bot must invite."""
    try:
        svg = await _service(request).qr_svg(group_id, entry)
    except EntryError as err:
        return _refusal(request, err)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/api/groups/{group_id}/qr.png")
async def group_qr_png(request: Request, group_id: str, entry: str | None = None) -> Response:
    """The group's join QR code as PNG (what the page shows); same rules as ``qr.svg``."""
    try:
        png = await _service(request).qr_png(group_id, entry)
    except EntryError as err:
        return _refusal(request, err)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(BOT_QR_PATH, include_in_schema=False)
async def bot_contact_qr(request: Request) -> Response:
    """The bot's own contact QR code (``entry.bot_contact_qr``), so a person can add it as a
    friend before messaging it; 404 when none is configured."""
    payload = request.app.state.bot.settings.entry.bot_contact_qr
    if not payload:
        return JSONResponse({"error": "not_found", "message": "没有配置机器人二维码。"}, 404)
    png = await anyio.to_thread.run_sync(render_png, payload)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})
