"""The picture of an image message, fetched from the puppet service and scanned for QR codes.

Wechaty hands a picture over as a FileBox (JSON): its bytes inline (``Base64``, small files), a
``Uuid`` to fetch with the service's ``Download`` stream (1.x services, files past 20 KB), a
``Url`` to fetch over HTTP, or a ``QRCode`` box, which *is* a QR code (its payload is the code's
text). Every fetch is bounded by :class:`ImageLimits`; anything that goes wrong raises
:class:`ImageUnavailable` with a short reason for the log, and the gateway keeps the message a
plain ``image``. Decoding runs in a worker thread (:func:`bot.moderation.qr.scan_image`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final

import httpx
from wechaty_grpc.wechaty import PuppetStub

from bot.gateways import _wechaty_compat as wire
from bot.moderation.qr import QrScan, scan_image

# FileBoxType in the ``file-box`` npm package (1.x).
BOX_BASE64: Final = 1
BOX_URL: Final = 2
BOX_QRCODE: Final = 3
BOX_UUID: Final = 7


@dataclass(frozen=True)
class ImageLimits:
    """How much the gateway spends on one picture, and on all of them at once.

    ``max_bytes``: larger pictures are not fetched (10 MB: WeChat sends photos well below it).
    ``timeout``: seconds for fetching and decoding one picture. ``concurrency``: pictures fetched
    and decoded at the same time (each decode holds a worker thread). ``backlog``: pictures
    waiting for a slot; past it, a new image goes on unscanned rather than queue without bound.
    """

    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 20.0
    concurrency: int = 2
    backlog: int = 200


class ImageUnavailable(Exception):
    """The picture could not be had within the limits; ``str(err)`` says why (no content)."""


async def scan_message_image(stub: PuppetStub, message_id: str, limits: ImageLimits) -> QrScan:
    """The QR codes in an image message's picture.

    Raise :class:`ImageUnavailable` for a FileBox that cannot be fetched within the limits;
    the service's own errors (``GRPCError``, a broken connection) pass through.
    """
    box = parse_file_box(await wire.message_image(stub, message_id))
    kind = _box_type(box)
    if kind == BOX_QRCODE:
        text = box.get("qrCode")
        if not isinstance(text, str) or not text:
            raise ImageUnavailable("QRCode file box without a payload")
        return QrScan(texts=(text,))
    data = await _bytes(stub, box, kind, limits.max_bytes)
    return await asyncio.to_thread(scan_image, data)


def parse_file_box(text: str) -> dict[str, Any]:
    """The FileBox JSON object; ImageUnavailable when it is not one."""
    try:
        box = json.loads(text) if text else None
    except ValueError:
        raise ImageUnavailable("file box is not JSON") from None
    if not isinstance(box, dict):
        raise ImageUnavailable("file box is not a JSON object")
    return box


def _box_type(box: dict[str, Any]) -> int:
    # file-box 0.x wrote ``boxType``; 1.x writes ``type`` (and reads both).
    kind = box.get("type", box.get("boxType"))
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise ImageUnavailable(f"file box without a numeric type: {kind!r}"[:80])
    return kind


async def _bytes(stub: PuppetStub, box: dict[str, Any], kind: int, max_bytes: int) -> bytes:
    size = box.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise ImageUnavailable(f"image of {size} bytes is over the {max_bytes}-byte limit")
    if kind == BOX_BASE64:
        return _from_base64(box.get("base64"), max_bytes)
    if kind == BOX_UUID:
        uuid = box.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise ImageUnavailable("Uuid file box without a uuid")
        return await _collect(wire.download(stub, uuid), max_bytes)
    if kind == BOX_URL:
        return await _from_url(box.get("url"), box.get("headers"), max_bytes)
    raise ImageUnavailable(f"file box type {kind} is not supported for images")


def _from_base64(text: object, max_bytes: int) -> bytes:
    if not isinstance(text, str) or not text:
        raise ImageUnavailable("Base64 file box without data")
    if len(text) // 4 * 3 > max_bytes + 3:  # checked before decoding: no huge allocation
        raise ImageUnavailable(f"image is over the {max_bytes}-byte limit")
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as err:
        raise ImageUnavailable(f"Base64 file box is not base64: {err}") from None


async def _collect(chunks: Any, max_bytes: int) -> bytes:
    """Join an async iterator of byte chunks, stopping (and closing it) past ``max_bytes``."""
    parts: list[bytes] = []
    total = 0
    async with aclosing(chunks) as stream:
        async for chunk in stream:
            total += len(chunk)
            if total > max_bytes:
                raise ImageUnavailable(f"image is over the {max_bytes}-byte limit")
            parts.append(chunk)
    return b"".join(parts)


async def _from_url(url: object, headers: object, max_bytes: int) -> bytes:
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ImageUnavailable("Url file box without an http(s) URL")
    sent = (
        {str(k): str(v) for k, v in headers.items() if isinstance(v, str | int)}
        if isinstance(headers, dict)
        else {}
    )
    # The overall deadline is the caller's (ImageLimits.timeout); this only bounds one read.
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=True) as client:
        try:
            async with client.stream("GET", url, headers=sent) as response:
                if response.status_code != 200:
                    raise ImageUnavailable(f"image URL answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ImageUnavailable(f"image is over the {max_bytes}-byte limit")
                return await _collect(response.aiter_bytes(), max_bytes)
        except httpx.HTTPError as err:
            raise ImageUnavailable(f"image URL failed: {type(err).__name__}") from None
