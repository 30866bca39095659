"""QR codes in pictures (issue 11, item 4: "QR images"): real generated pictures are decoded,
a photo without a code, a corrupt file and an oversized one are plain images, never a crash."""

from __future__ import annotations

import asyncio
import base64
import http.server
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.events import MessageReceived, Person
from bot.gateways import images
from bot.gateways.images import ImageLimits, ImageUnavailable
from bot.gateways.wechaty import WechatyGateway
from bot.moderation.qr import QrScan, scan_image

AD = "https://evil.example/pos?invite=8848"


def qr_png(text: str = AD, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def photo(width: int = 640, height: int = 480, seed: int = 7) -> Image.Image:
    """A photo-like picture: smooth gradients, blotches and sensor noise, no code in it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            120 + 80 * np.sin(x / 90.0),
            110 + 70 * np.cos(y / 70.0),
            100 + 60 * np.sin((x + y) / 120.0),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def jpeg(picture: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def test_a_generated_qr_code_is_read() -> None:
    scan = scan_image(qr_png())
    assert scan.found and scan.texts == (AD,) and scan.error is None


def test_a_qr_code_inside_a_photo_is_read() -> None:
    """The usual ad: a screenshot or poster with the code somewhere in it, JPEG-compressed."""
    picture = photo(900, 1200)
    code = Image.open(io.BytesIO(qr_png("微信 daihuan8848 代还", scale=5))).convert("RGB")
    picture.paste(code, (300, 700))
    scan = scan_image(jpeg(picture))
    assert scan.texts == ("微信 daihuan8848 代还",)


def test_a_photo_without_a_code_is_no_qr() -> None:
    scan = scan_image(jpeg(photo()))
    assert not scan.found and scan.error is None


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", qr_png()[:80], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64],
    ids=["empty", "text", "truncated-png", "png-magic-only"],
)
def test_a_corrupt_file_is_an_error_not_a_crash(data: bytes) -> None:
    scan = scan_image(data)
    assert not scan.found and scan.error


def test_a_picture_with_too_many_pixels_is_not_decoded() -> None:
    """A tiny file can claim a huge canvas (a decompression bomb): refused from its header."""
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, format="PNG")  # ~10 KB on disk, 81 MP
    scan = scan_image(out.getvalue(), max_pixels=40_000_000)
    assert not scan.found and scan.error is not None and "too large" in scan.error


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_scan_never_an_exception(data: bytes) -> None:
    scan = scan_image(data)
    assert scan.found or scan.error is not None or scan.texts == ()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(qr_png()) - 1))
def test_any_truncation_of_a_real_picture_never_raises(cut: int) -> None:
    scan = scan_image(qr_png()[:cut])
    assert not scan.found or scan.texts == (AD,)


# -- FileBoxes as the puppet service hands them over ------------------------------------------


class FakeStub:
    """Stands in for the gRPC stub: answers messageImage with a FileBox and Download with
    chunks (the real calls are exercised in tests/wechaty/test_wechaty_images.py)."""

    def __init__(self, box: dict[str, object], chunks: list[bytes] | None = None) -> None:
        self.box, self.chunks, self.closed = box, chunks or [], False

    async def message_image(self, *, id: str, type: object) -> object:  # noqa: A002
        return type_ns(filebox=json.dumps(self.box))

    def _unary_stream(self, route: str, request: object, response_type: type) -> object:
        assert route == "/wechaty.Puppet/Download"
        stub = self

        async def stream() -> AsyncIterator[object]:
            try:
                for chunk in stub.chunks:
                    yield response_type(chunk=chunk)
            finally:
                stub.closed = True

        return stream()


def type_ns(**fields: object) -> object:
    return type("Response", (), fields)()


def scan(stub: FakeStub, limits: ImageLimits | None = None) -> QrScan:
    fake: Any = stub
    return asyncio.run(images.scan_message_image(fake, "m1", limits or ImageLimits()))


def test_base64_box_is_decoded() -> None:
    box = {"type": 1, "name": "a.png", "base64": base64.b64encode(qr_png()).decode()}
    assert scan(FakeStub(box)).texts == (AD,)


def test_old_box_type_key_is_read() -> None:
    box = {"boxType": 1, "name": "a.png", "base64": base64.b64encode(qr_png()).decode()}
    assert scan(FakeStub(box)).texts == (AD,)


def test_uuid_box_is_downloaded_in_chunks() -> None:
    data = qr_png()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    assert scan(FakeStub({"type": 7, "uuid": "u-1"}, chunks)).texts == (AD,)


def test_qrcode_box_is_a_qr_code() -> None:
    box = {"type": 3, "qrCode": "https://x.example"}
    assert scan(FakeStub(box)).texts == ("https://x.example",)


def test_oversized_uuid_download_stops_and_closes_the_stream() -> None:
    stub = FakeStub({"type": 7, "uuid": "u-1"}, [b"x" * 600] * 10)
    with pytest.raises(ImageUnavailable, match="limit"):
        scan(stub, ImageLimits(max_bytes=1000))
    assert stub.closed


@pytest.mark.parametrize(
    "box",
    [
        {"type": 7, "uuid": "u-1", "size": 20_000_000},  # declared size over the limit
        {"type": 1, "base64": "A" * 16_000_000},  # inline data over the limit, not decoded
    ],
    ids=["declared-size", "base64"],
)
def test_oversized_boxes_are_refused_before_fetching(box: dict[str, object]) -> None:
    with pytest.raises(ImageUnavailable, match="limit"):
        scan(FakeStub(box))


@pytest.mark.parametrize(
    "box",
    [
        {"type": 5, "name": "a.png"},  # a File box cannot cross the wire
        {"name": "a.png"},
        {"type": 7},
        {"type": 1, "base64": ""},
        {"type": 3, "qrCode": ""},
        {"type": 2, "url": "file:///etc/passwd"},
    ],
)
def test_unusable_boxes_are_unavailable(box: dict[str, object]) -> None:
    with pytest.raises(ImageUnavailable):
        scan(FakeStub(box))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_a_file_box_that_is_not_a_json_object_is_unavailable(text: str) -> None:
    with pytest.raises(ImageUnavailable):
        images.parse_file_box(text)


# -- Url boxes: fetched over HTTP from a local server ---------------------------------------


class _Pictures(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = {"/qr.png": qr_png(), "/big.png": b"x" * 5000}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def picture_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_url_box_is_fetched(picture_server: str) -> None:
    box = {"type": 2, "url": f"{picture_server}/qr.png", "headers": {}}
    assert scan(FakeStub(box)).texts == (AD,)


@pytest.mark.parametrize(("path", "reason"), [("/missing.png", "HTTP 404"), ("/big.png", "limit")])
def test_url_box_that_fails_or_is_too_big_is_unavailable(
    picture_server: str, path: str, reason: str
) -> None:
    box = {"type": 2, "url": f"{picture_server}{path}"}
    with pytest.raises(ImageUnavailable, match=reason):
        scan(FakeStub(box), ImageLimits(max_bytes=4000))


async def test_past_the_backlog_an_image_goes_on_unscanned() -> None:
    """Pictures waiting for a scan are bounded: past the backlog an image is handed on as it is
    (no task, no download), so a burst of pictures cannot grow memory without limit."""
    gateway = WechatyGateway("127.0.0.1:9", "token", image_limits=ImageLimits(backlog=0))
    event = MessageReceived(
        at=datetime(2026, 12, 1, tzinfo=UTC),
        sender=Person("u1", "张三"),
        text="",
        room_id="r1@chatroom",
        message_id="m1",
        kind="image",
    )
    fake: Any = object()
    assert gateway._start_scan(fake, event) is event  # noqa: SLF001
