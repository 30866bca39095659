"""Images posted in groups through a real puppet service: the gateway fetches each picture over
gRPC (inline Base64, or a Uuid box through the ``Download`` stream for pictures past 20 KB),
decodes it, and a QR code makes the message ``image_qr`` (issue 11, item 4: "QR images"). The
whole bot then warns the member under rule ``ad.qr_image``; a plain photo gets no warning."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from bot.app import Qunfu, load_source
from bot.events import MessageReceived
from bot.gateways.images import ImageLimits
from bot.gateways.wechaty import WechatyGateway
from bot.moderation.lexicon import default_lexicon
from scheduler.clock import ScaledClock
from tests.support import bot_settings

from .conftest import EventTap, PuppetHarness
from .test_bot_end_to_end import ROOM, SPEED, START, ops_for_the_service

AD = "https://evil.example/pos?invite=8848"
QR_REASON = default_lexicon().reason("ad.qr_image")


def qr_png(text: str = AD) -> bytes:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=6)
    return out.getvalue()


def poster_with_qr(text: str = AD) -> bytes:
    """A noisy JPEG well past the service's 20 KB pass-through limit, a QR code pasted in."""
    rng = np.random.default_rng(3)
    noise = rng.integers(60, 200, (700, 600, 3), dtype=np.uint8)
    picture = Image.fromarray(noise, "RGB")
    code = Image.open(io.BytesIO(qr_png(text))).convert("RGB")
    picture.paste(code, (150, 300))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def plain_photo() -> bytes:
    y, x = np.mgrid[0:480, 0:640]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


async def post_image(h: PuppetHarness, sender: str, data: bytes, room: str) -> str:
    reply = await h.command(
        "image", **{"from": sender}, room=room, base64=base64.b64encode(data).decode()
    )
    return str(reply["message"])


async def kind_of(tap: EventTap, message_id: str) -> str:
    event = await tap.next(lambda e: isinstance(e, MessageReceived) and e.message_id == message_id)
    assert isinstance(event, MessageReceived) and event.text == ""  # the code is never repeated
    return event.kind


# -- the gateway ------------------------------------------------------------------------------

GATEWAY_ROOM = "sz-nanshan-kjy@chatroom"


@pytest.fixture
async def world(puppet_service: PuppetHarness) -> PuppetHarness:
    await puppet_service.contact("u1", "张三")
    await puppet_service.room(GATEWAY_ROOM, ["u1"], topic="深圳南山科技园福利1群")
    return puppet_service


async def test_small_qr_picture_inline_is_image_qr(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    data = qr_png()
    assert len(data) < 20 * 1024  # served inline as a Base64 box
    message = await post_image(world, "u1", data, GATEWAY_ROOM)
    assert await kind_of(tap, message) == "image_qr"


async def test_large_picture_is_downloaded_and_its_qr_found(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    data = poster_with_qr()
    assert len(data) > 20 * 1024  # served as a Uuid box, fetched with rpc Download
    message = await post_image(world, "u1", data, GATEWAY_ROOM)
    assert await kind_of(tap, message) == "image_qr"


async def test_qrcode_file_box_is_image_qr(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    reply = await world.command("image", **{"from": "u1"}, room=GATEWAY_ROOM, qrcode=AD)
    assert await kind_of(tap, str(reply["message"])) == "image_qr"


async def test_plain_photo_and_corrupt_picture_stay_image(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    photo = await post_image(world, "u1", plain_photo(), GATEWAY_ROOM)
    broken = await post_image(world, "u1", b"\x89PNG\r\n\x1a\n not really", GATEWAY_ROOM)
    assert await kind_of(tap, photo) == "image"
    assert await kind_of(tap, broken) == "image"


async def test_a_slow_picture_does_not_hold_up_later_messages(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    """The scan runs beside the event stream: text after an image is not stuck behind it."""
    message = await post_image(world, "u1", poster_with_qr(), GATEWAY_ROOM)
    await world.say("u1", "大家好", room=GATEWAY_ROOM)
    await tap.next(lambda e: isinstance(e, MessageReceived) and e.text == "大家好")
    assert await kind_of(tap, message) == "image_qr"


async def test_oversized_picture_stays_image(world: PuppetHarness) -> None:
    gateway = WechatyGateway(
        world.endpoint,
        world.token,
        call_timeout=5.0,
        connect_timeout=5.0,
        image_limits=ImageLimits(max_bytes=30 * 1024),
    )
    await gateway.start()
    tap = EventTap(gateway)
    try:
        await gateway.wait_logged_in(30)
        data = poster_with_qr()
        assert len(data) > 30 * 1024
        message = await post_image(world, "u1", data, GATEWAY_ROOM)
        assert await kind_of(tap, message) == "image"
    finally:
        await tap.close()
        await gateway.aclose()


async def test_images_left_unscanned_when_the_composition_root_says_so(
    gateway: WechatyGateway, world: PuppetHarness, tap: EventTap
) -> None:
    asked: list[tuple[str, str]] = []

    def wanted(group: str, sender: str) -> bool:
        asked.append((group, sender))
        return False

    gateway.scan_images_when(wanted)
    message = await post_image(world, "u1", qr_png(), GATEWAY_ROOM)
    assert await kind_of(tap, message) == "image"
    assert asked == [(GATEWAY_ROOM, "u1")]


# -- the whole bot ----------------------------------------------------------------------------


@pytest.fixture
async def moderating_bot(
    tmp_path: Path, puppet_service: PuppetHarness
) -> AsyncIterator[PuppetHarness]:
    await puppet_service.contact("u1", "张三")
    await puppet_service.contact("u2", "李四")
    await puppet_service.room(ROOM, ["u1", "u2"], topic="深圳南山科技园福利1群")
    # A scaled clock, as in test_bot_end_to_end: the bot loop's idle sleep is then short, so
    # stopping it at teardown never waits out a 30-second real sleep.
    clock = ScaledClock(START, SPEED)
    gateway = WechatyGateway(
        puppet_service.endpoint,
        puppet_service.token,
        call_timeout=5.0,
        connect_timeout=5.0,
        backoff=(0.2, 1.0),
        clock=clock,
        # One scan at a time: pictures reach the bot in the order they were posted.
        image_limits=ImageLimits(concurrency=1),
    )
    await gateway.start()
    await gateway.wait_logged_in(30)
    settings = bot_settings(
        ops_for_the_service(tmp_path),
        database={"url": f"sqlite:///{tmp_path}/q.db"},
        bot={"id": gateway.bot_id},
        outbox={"rate_per_minute": 120, "jitter": "0s", "backoff": "2s", "max_backoff": "10s"},
    )
    bot = Qunfu(settings, clock, gateway, load_source(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run_forever(stop))
    try:
        yield puppet_service
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await gateway.aclose()
        bot.close()


async def test_member_qr_image_is_warned_and_plain_image_is_not(
    moderating_bot: PuppetHarness,
) -> None:
    service = moderating_bot
    await post_image(service, "u2", plain_photo(), ROOM)
    await post_image(service, "u1", poster_with_qr(), ROOM)
    warning = await service.wait_sent(
        lambda r: r.get("conversation") == ROOM and QR_REASON in r.get("text", ""), timeout=30
    )
    assert warning["mentions"] == ["u1"]
    assert "evil.example" not in warning["text"]
    # The plain photo was scanned and handled first, so a warning for it would have gone out
    # before this one.
    said = [r for r in service.sent if r.get("event") == "sent" and r["conversation"] == ROOM]
    assert [r["mentions"] for r in said] == [["u1"]]
    assert all("evil.example" not in r.get("text", "") for r in service.sent)
