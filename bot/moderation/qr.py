"""Finding QR codes in pictures members post (issue 11, item 4: "QR images").

Pure and synchronous: bytes in, a :class:`QrScan` out. Decoding is CPU work (tens to hundreds
of milliseconds for a phone photo), so callers on the event loop run :func:`scan_image` in a
worker thread (``asyncio.to_thread``); the function is thread-safe.

Pillow reads the picture (any format it knows: JPEG, PNG, GIF, WebP, BMP …) and zxing-cpp
looks for QR codes (and Micro/rMQR codes) in it. Bad input never raises: a corrupt, truncated
or absurdly large picture gives a scan with ``error`` set, so the message stays a plain image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Final

import zxingcpp
from PIL import Image, UnidentifiedImageError

MAX_PIXELS: Final = 40_000_000
"""Pictures larger than this (width x height) are not decoded: 40 MP is beyond any phone
camera's output, and a small file claiming more is a decompression bomb."""

_FORMATS: Final = zxingcpp.BarcodeFormats(
    [
        zxingcpp.BarcodeFormat.QRCode,
        zxingcpp.BarcodeFormat.MicroQRCode,
        zxingcpp.BarcodeFormat.RMQRCode,
    ]
)


@dataclass(frozen=True, slots=True)
class QrScan:
    """What a picture holds: the texts of its QR codes (empty: none found), or why it could
    not be read (``error``, a short English reason for logs, never the picture's content)."""

    texts: tuple[str, ...] = ()
    error: str | None = None

    @property
    def found(self) -> bool:
        """True when at least one QR code was decoded."""
        return bool(self.texts)


def scan_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> QrScan:
    """The QR codes in an encoded picture (``data``: the file's bytes)."""
    if not data:
        return QrScan(error="empty image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past twice its limit raises) about huge pictures; our own
            # pixel limit below is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                if width * height > max_pixels:
                    return QrScan(error=f"image too large to decode ({width}x{height} pixels)")
                # Grayscale is all the decoder reads; converting first also loads the pixels,
                # so a truncated file fails here rather than inside the decoder.
                gray = picture.convert("L")
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        return QrScan(error=f"not a readable image: {type(err).__name__}")
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        # Pillow reports truncated and malformed files with these (SyntaxError from some
        # plugins' header parsers).
        return QrScan(error=f"corrupt image: {type(err).__name__}: {err}"[:200])
    try:
        codes = zxingcpp.read_barcodes(gray, formats=_FORMATS)
    except (RuntimeError, ValueError) as err:  # zxing-cpp's errors on an unusual buffer
        return QrScan(error=f"decoder failed: {type(err).__name__}")
    return QrScan(texts=tuple(code.text for code in codes if code.valid))
