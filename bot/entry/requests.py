"""Parsing what the entry page sends, with refusals in Chinese that say what was expected.

Parsed here by hand rather than by FastAPI's models: the person on the page must read the
reason in Chinese, and text, NaN or out-of-range coordinates are expected traffic, not bugs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from bot.entry.channels import BAD_CHANNEL, MISSING_CHANNEL
from bot.entry.errors import bad_request

CRS = ("wgs84", "gcj02", "bd09")
MAX_ADDRESS = 100
_VISIT_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")


@dataclass(frozen=True)
class RouteRequest:
    """Where the visitor is: coordinates, an address, or a city and district picked."""

    channel: str
    ref: str | None = None
    entry: str | None = None
    lat: float | None = None
    lon: float | None = None
    crs: str = "wgs84"
    address: str | None = None
    city: str | None = None
    district: str | None = None

    @property
    def how(self) -> str:
        if self.lat is not None:
            return "gps"
        return "address" if self.address is not None else "district"


def _degrees(data: dict[str, Any], key: str, name: str, limit: float) -> float:
    value = data.get(key)
    if value is None:
        raise bad_request(f"missing_{key}", f"缺少{name}（{key}）。")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"bad_{key}", f"{name}必须是数字，收到的是“{str(value)[:20]}”。")
    try:
        v = float(value)
    except OverflowError:  # a JSON integer with hundreds of digits
        v = math.inf
    if not math.isfinite(v):
        raise bad_request(f"bad_{key}", f"{name}必须是有效数字（不能是 NaN 或无穷大）。")
    if not -limit <= v <= limit:
        raise bad_request(f"bad_{key}", f"{name}超出范围：应在 -{limit:g} 到 {limit:g} 之间。")
    return v


def _text(data: dict[str, Any], key: str, name: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"bad_{key}", f"{name}必须是文字。")
    return value.strip()


def parse_route_request(data: object) -> RouteRequest:
    """A :class:`RouteRequest` from decoded JSON; an :class:`EntryError` (400) otherwise."""
    if not isinstance(data, dict):
        raise bad_request("bad_body", "请求格式不正确：应为 JSON 对象。")
    channel = data.get("channel")
    if channel is None or channel == "":
        raise bad_request("missing_channel", MISSING_CHANNEL)
    if not isinstance(channel, str):
        raise bad_request("bad_channel", BAD_CHANNEL)
    ref = _text(data, "ref", "邀请码") or None
    entry = _text(data, "entry", "访问编号") or None
    if entry is not None and not _VISIT_ID.match(entry):
        raise bad_request("bad_entry", "访问编号格式不正确，请刷新页面后重试。")
    common = RouteRequest(channel=channel, ref=ref, entry=entry)
    if "lat" in data or "lon" in data:
        lat = _degrees(data, "lat", "纬度", 90)
        lon = _degrees(data, "lon", "经度", 180)
        crs = data.get("crs", "wgs84")
        if crs not in CRS:
            raise bad_request("bad_crs", "坐标系（crs）只能是 wgs84、gcj02 或 bd09。")
        return replace(common, lat=lat, lon=lon, crs=crs)
    if "address" in data:
        address = _text(data, "address", "地址")
        if not address:
            raise bad_request("missing_address", "请输入地址，例如“深圳南山科技园”。")
        if len(address) > MAX_ADDRESS:
            raise bad_request("bad_address", f"地址太长了，请控制在{MAX_ADDRESS}字以内。")
        return replace(common, address=address)
    if "city" in data or "district" in data:
        city = _text(data, "city", "城市")
        district = _text(data, "district", "区域")
        if not city or not district:
            raise bad_request("missing_district", "请同时选择城市和区域。")
        return replace(common, city=city, district=district)
    raise bad_request("missing_location", "请提供位置：允许定位、输入地址，或选择城市和区域。")
