"""The thin layer between Qunfu and Wechaty's gRPC puppet protocol.

We drive the generated stubs of the PyPI package ``wechaty-grpc`` (0.20.x, betterproto 1.x)
directly instead of ``wechaty`` / ``wechaty-puppet-service``; docs/wechaty.md says why. The
stubs predate the 1.x puppet services now deployed, so this module holds the few places where
they disagree, and nothing else:

* message types are numbered as in ``wechaty-puppet`` 1.x on the wire (Contact = 3,
  Image = 6, Text = 7, Location = 8, Url = 14), not as in the 0.20 enum;
* the generated ``room_qr_code()`` forgets the room id the request message does carry;
* the token travels as ``authorization: Wechaty <token>`` metadata (the 1.x scheme, which
  works with and without TLS), not in the HTTP/2 ``:authority`` header;
* 1.x services hand a picture over as a FileBox whose bytes, past 20 KB, must be fetched with
  the ``Download`` stream, which the 0.20 stubs do not have (:func:`download`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from xml.etree import ElementTree

import betterproto
from grpclib.client import Channel
from grpclib.config import Configuration
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty.puppet import ImageType, RoomQrCodeRequest, RoomQrCodeResponse

MESSAGE_CONTACT: Final = 3
MESSAGE_IMAGE: Final = 6
MESSAGE_TEXT: Final = 7
MESSAGE_LOCATION: Final = 8
MESSAGE_URL: Final = 14
FRIENDSHIP_RECEIVE: Final = 2


@dataclass(frozen=True)
class Endpoint:
    """Where a puppet service listens: ``host:port``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read ``host:port`` (an ``http(s)://`` or ``grpc://`` prefix is tolerated)."""
        rest = text.strip()
        for scheme in ("grpc://", "grpcs://", "http://", "https://"):
            if rest.startswith(scheme):
                rest = rest[len(scheme) :]
        rest = rest.rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"puppet service endpoint must be HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsOptions:
    """TLS towards the puppet service; ``enabled=False`` is plain HTTP/2 (local services)."""

    enabled: bool = False
    ca_file: Path | None = None
    server_name: str | None = None


def open_stub(endpoint: Endpoint, token: str, tls: TlsOptions) -> tuple[Channel, PuppetStub]:
    """A channel to the service and a stub that authenticates every call with the token."""
    context: ssl.SSLContext | None = None
    config = Configuration()
    if tls.enabled:
        context = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH,
            cafile=str(tls.ca_file) if tls.ca_file else None,
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
        if tls.server_name:
            config = Configuration(ssl_target_name_override=tls.server_name)
    channel = Channel(endpoint.host, endpoint.port, ssl=context, config=config)
    stub = PuppetStub(channel, metadata={"authorization": f"Wechaty {token}"})
    return channel, stub


async def room_qr_code(stub: PuppetStub, room_id: str) -> str:
    """The room's QR code payload (the generated stub method drops the id)."""
    response = await stub._unary_unary(  # noqa: SLF001 - the one documented workaround
        "/wechaty.Puppet/RoomQRCode", RoomQrCodeRequest(id=room_id), RoomQrCodeResponse
    )
    return str(response.qrcode)


async def message_image(stub: PuppetStub, message_id: str) -> str:
    """The FileBox (JSON text) of an image message's picture, in the service's "HD" size: a
    thumbnail is often too small for a QR code to be read."""
    response = await stub.message_image(id=message_id, type=ImageType.IMAGE_TYPE_HD)
    return str(response.filebox)


@dataclass(eq=False, repr=False)
class DownloadRequest(betterproto.Message):
    """``wechaty.puppet.DownloadRequest`` (1.x ``download-upload.proto``): a FileBox uuid."""

    id: str = betterproto.string_field(1)


@dataclass(eq=False, repr=False)
class DownloadResponse(betterproto.Message):
    """``wechaty.puppet.DownloadResponse``: one chunk of the file's bytes."""

    chunk: bytes = betterproto.bytes_field(1)


async def download(stub: PuppetStub, uuid: str) -> AsyncIterator[bytes]:
    """The bytes of a uuid FileBox, chunk by chunk (``rpc Download`` of 1.x services).

    Stopping early (a file over the size limit) closes the stream: ``aclosing`` ends the call
    at once instead of when the generator is garbage-collected.
    """
    stream = stub._unary_stream(  # noqa: SLF001 - the 0.20 stubs lack this 1.x call
        "/wechaty.Puppet/Download", DownloadRequest(id=uuid), DownloadResponse
    )
    async with aclosing(stream) as responses:
        async for response in responses:
            yield response.chunk


@dataclass(frozen=True)
class Pin:
    """A location as WeChat shares it (GCJ-02)."""

    lat: float
    lon: float
    label: str


def parse_location(text: str) -> Pin:
    """Read the ``<msg><location x=LAT y=LON label=... poiname=.../></msg>`` of a location message.

    Raise ValueError when the text is not such a message or the coordinates are not on Earth.
    """
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as err:
        raise ValueError(f"location message is not XML: {err}") from None
    node = root if root.tag == "location" else root.find("location")
    if node is None:
        raise ValueError("location message has no <location> element")
    try:
        lat, lon = float(node.attrib["x"]), float(node.attrib["y"])
    except (KeyError, ValueError):
        raise ValueError("location message lacks numeric x/y attributes") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"location out of range: {lat}, {lon}")
    label = node.attrib.get("poiname") or node.attrib.get("label") or ""
    return Pin(lat, lon, label)
