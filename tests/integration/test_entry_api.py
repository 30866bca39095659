"""The live-code entry path over HTTP: page, routing, choice, QR codes, overflow, funnel, bad input.

A whole bot on the simulator gateway and a virtual clock, with a temp SQLite database, served
through httpx's ASGI transport.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from geopy.distance import geodesic
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.app import Qunfu, load_source
from bot.cli import app as cli
from bot.config import settings_from_mapping
from bot.events import Invite
from bot.gateways.simulator import SimulatorGateway
from bot.routing import to_wgs84
from bot.web.app import create_app
from db.models import EntryVisit, Membership, OutboxRow, WelfareGroupRow
from scheduler.clock import SHANGHAI, VirtualClock

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
KJY_WGS = to_wgs84(22.5405, 113.9345, "gcj02")  # standing at 深圳南山科技园, as a phone's GPS says
XIXIANG = (22.5790, 113.8650)  # GCJ-02, next to 深圳宝安西乡福利群, the only group within 5 km
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Rig:
    bot: Qunfu
    clock: VirtualClock
    gateway: SimulatorGateway
    http: httpx.AsyncClient
    qr_calls: list[str]

    async def route(self, **body: object) -> httpx.Response:
        return await self.http.post("/api/route", json={"channel": "wx-menu", **body})

    async def settle(self) -> None:
        """Deliver the bot's pending events, then the sends due now."""
        for event in self.gateway.pending_events():
            await self.bot.handle(event)
        await self.bot.run_due()

    def visit(self, entry: str) -> EntryVisit:
        with Session(self.bot.engine) as s:
            row = s.get(EntryVisit, entry)
            assert row is not None
            return row

    def set_members(self, group_id: str, count: int) -> None:
        with Session(self.bot.engine) as s:
            row = s.get(WelfareGroupRow, group_id)
            assert row is not None
            row.member_count = count
            s.add(row)
            s.commit()
        self.bot.member_counts.reload()  # live counts are kept in memory

    def outbox_to(self, contact: str) -> list[OutboxRow]:
        with Session(self.bot.engine) as s:
            return list(
                s.exec(select(OutboxRow).where(OutboxRow.conversation == f"contact:{contact}"))
            )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    settings = settings_from_mapping(
        {
            "entry": {"ops_contacts": ["ops1", "ops2"]},
            "outbox": {"seed": 1, "jitter": "0s"},
            "simulator": {"demo": None},
        },
        ROOT,
    )
    clock = VirtualClock(T0)
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    bot = Qunfu(
        settings,
        clock,
        gateway,
        load_source(settings),
        database_url=f"sqlite:///{tmp_path / 'qunfu.db'}",
    )
    for g in bot.ops.groups.values():
        gateway.add_room(g.id, g.name)
    for cid, name in (("ops1", "运营小王"), ("ops2", "运营小李"), ("u1", "张三")):
        gateway.add_contact(cid, name)
    calls: list[str] = []
    real_qrcode = gateway.room_qrcode

    async def counting_qrcode(room_id: str) -> str:
        calls.append(room_id)
        return await real_qrcode(room_id) + f"?v={len(calls)}"

    gateway.room_qrcode = counting_qrcode  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=create_app(bot))
    async with httpx.AsyncClient(transport=transport, base_url="http://qunfu.test") as http:
        yield Rig(bot, clock, gateway, http, calls)
    bot.close()


def _entry_of(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="entry-data">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


# --- the page ------------------------------------------------------------------------------


async def test_a_live_code_opens_the_page_and_records_a_visit(rig: Rig) -> None:
    r = await rig.http.get("/join", params={"channel": "sms-alert"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for element_id in (
        "locate",
        "city",
        "district",
        "address",
        "address-go",
        "results",
        "qr",
        "error",
        "chosen-name",
    ):
        assert f'id="{element_id}"' in r.text
    data = _entry_of(r.text)
    assert data["channel"] == "sms-alert" and "深圳" in [c["name"] for c in data["cities"]]
    assert rig.visit(data["entry"]).channel == "sms-alert"
    assert "动账提醒" in r.text
    for asset in ("entry.js", "entry.css"):
        assert (await rig.http.get(f"/join/static/{asset}")).status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({}, 400, "缺少渠道信息"),
        ({"channel": "no-such"}, 404, "未知的入口渠道"),
        ({"channel": "<script>alert(1)</script>"}, 400, "渠道信息有误"),
        ({"channel": "referral", "ref": "AAAAAAAA-BBBBBBBB"}, 400, "邀请码无效"),
        ({"channel": "referral", "ref": "<script>"}, 400, "邀请码格式不正确"),
    ],
)
async def test_a_bad_link_shows_the_reason_on_the_page(
    rig: Rig, params: dict, status: int, text: str
) -> None:
    r = await rig.http.get("/join", params=params)
    assert r.status_code == status
    error = re.search(r'<p id="error"[^>]*>(.*?)</p>', r.text, re.S)
    assert error and text in error.group(1)
    assert "<script>alert" not in r.text and '<script>"' not in r.text
    assert _entry_of(r.text)["entry"] is None


async def test_an_issued_referral_code_is_attributed_to_its_owner(rig: Rig) -> None:
    code = rig.bot.referral_codes.issue("member-42", T0)
    assert rig.bot.referral_codes.issue("member-42", T0) == code  # one code per person
    r = await rig.http.get("/join", params={"channel": "referral", "ref": code.lower()})
    assert r.status_code == 200
    visit = rig.visit(_entry_of(r.text)["entry"])
    assert (visit.ref_code, visit.referrer_id) == (code, "member-42")
    # Signed right but never issued (e.g. revoked): refused as unknown.
    serial = "ABCDEFGH"
    unissued = f"{serial}-{rig.bot.referral_codes._mac(serial)}"
    r = await rig.route(channel="referral", ref=unissued, lat=KJY_WGS[0], lon=KJY_WGS[1])
    assert r.status_code == 400 and r.json()["error"] == "unknown_referral"


async def test_a_referral_qr_is_an_image_for_apps_and_a_page_for_people(rig: Rig) -> None:
    import io

    import zxingcpp
    from PIL import Image

    code = rig.bot.referral_codes.issue("member-42", T0)
    link = rig.bot.referral_notices.link(code)
    assert link is not None and f"ref={code}" in link
    svg = await rig.http.get(f"/r/{code}/qr.svg", headers={"accept": "image/*"})
    assert svg.headers["content-type"] == "image/svg+xml"
    assert "<title>邀请二维码</title>" in svg.text
    png = await rig.http.get(f"/r/{code.lower()}/qr.png")
    assert png.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert [d.text for d in decoded] == [link]
    # Opened from the chat in WeChat: a page showing the PNG, which can be long-pressed.
    page = await rig.http.get(f"/r/{code}/qr.svg", headers={"accept": "text/html,*/*"})
    assert page.headers["content-type"].startswith("text/html")
    assert f'<img src="/r/{code}/qr.png"' in page.text and "长按图片" in page.text
    # A forged code mints nothing: JSON for apps, a Chinese page for people.
    forged = "AAAAAAAA-BBBBBBBB"
    for path in (f"/r/{forged}/qr.svg", f"/r/{forged}/qr.png"):
        r = await rig.http.get(path)
        assert r.status_code == 404 and r.json()["error"] == "forged_referral"
    r = await rig.http.get(f"/r/{forged}/qr.svg", headers={"accept": "text/html"})
    assert r.status_code == 404 and "邀请码无效" in r.text and "<img" not in r.text


# --- routing -------------------------------------------------------------------------------


async def test_gps_location_gets_nearest_groups_with_room_and_geodesic_distances(rig: Rig) -> None:
    r = await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1], crs="wgs84")
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [g["group"] for g in body["groups"]]
    assert ids[0] == "sz-nanshan-kjy"
    assert "sz-nanshan-kjy-2" not in ids  # full: 500/500
    distances = [g["distance_m"] for g in body["groups"]]
    assert distances == sorted(distances) and distances[0] < 5
    szu = next(g for g in body["groups"] if g["group"] == "sz-nanshan-szu")
    assert szu["distance_m"] == pytest.approx(
        geodesic(KJY_WGS, to_wgs84(22.5352, 113.9310)).m, abs=1
    )
    assert {g["join"] for g in body["groups"]} == {"qr"}  # all under 200 members
    visit = rig.visit(body["entry"])
    assert visit.located_how == "gps" and visit.area and visit.area.startswith("grid:")
    assert body["overflow"] is False


async def test_an_address_is_geocoded_from_the_gazetteer(rig: Rig) -> None:
    r = await rig.route(address="深圳市南山区科技园腾讯大厦附近")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "深圳南山区科技园" and body["groups"][0]["group"] == "sz-nanshan-kjy"
    assert rig.visit(body["entry"]).area == "district:深圳:南山区"


async def test_a_city_and_district_pick_routes_from_the_district_centre(rig: Rig) -> None:
    r = await rig.route(city="广州", district="越秀区")
    assert r.status_code == 200
    assert r.json()["groups"][0]["group"] == "gz-yuexiu-bjl"
    assert r.json()["label"] == "广州越秀区"


async def test_the_same_visit_is_kept_across_tries(rig: Rig) -> None:
    entry = _entry_of((await rig.http.get("/join", params={"channel": "wx-menu"})).text)["entry"]
    r1 = await rig.route(entry=entry, address="火星基地")
    assert r1.status_code == 404 and "没有找到这个地址" in r1.json()["message"]
    r2 = await rig.route(entry=entry, city="上海", district="浦东新区")
    assert r2.json()["entry"] == entry
    assert rig.bot.visits.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"lat": 91, "lon": 113.9}, 400, "bad_lat"),
        ({"lat": 22.5, "lon": -181}, 400, "bad_lon"),
        ({"lat": "二十二", "lon": 113.9}, 400, "bad_lat"),
        ({"lat": "22.5", "lon": 113.9}, 400, "bad_lat"),
        ({"lat": True, "lon": 113.9}, 400, "bad_lat"),
        ({"lat": 22.5}, 400, "missing_lon"),
        ({"lat": 22.5, "lon": 113.9, "crs": "mercator"}, 400, "bad_crs"),
        ({"address": "   "}, 400, "missing_address"),
        ({"address": "深" * 101}, 400, "bad_address"),
        ({"address": 42}, 400, "bad_address"),
        ({"city": "深圳"}, 400, "missing_district"),
        ({"city": "深圳", "district": "火星区"}, 404, "unknown_district"),
        ({}, 400, "missing_location"),
        ({"channel": None, "lat": 22.5, "lon": 113.9}, 400, "missing_channel"),
        ({"channel": "no-such", "lat": 22.5, "lon": 113.9}, 404, "unknown_channel"),
        ({"channel": 7, "lat": 22.5, "lon": 113.9}, 400, "bad_channel"),
        ({"ref": "NOT-A-CODE", "lat": 22.5, "lon": 113.9}, 400, "bad_referral"),
        ({"ref": "AAAAAAAA-BBBBBBBB", "lat": 22.5, "lon": 113.9}, 400, "forged_referral"),
        ({"entry": "no-such-visit", "lat": 22.5, "lon": 113.9}, 400, "unknown_entry"),
        ({"entry": "<b>", "lat": 22.5, "lon": 113.9}, 400, "bad_entry"),
    ],
)
async def test_bad_route_input_is_refused_in_chinese(
    rig: Rig, body: dict, status: int, code: str
) -> None:
    r = await rig.route(**body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and _CJK.search(r.json()["message"])


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"channel": "wx-menu", "lat": NaN, "lon": 113.9}',
        b'{"channel": "wx-menu", "lat": Infinity, "lon": 113.9}',
        b'{"channel": "wx-menu", "lat": 1' + b"0" * 400 + b', "lon": 113.9}',
        b'{"channel": "wx-menu", "lat": 1' + b"0" * 5000 + b', "lon": 113.9}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
async def test_malformed_bodies_are_refused_not_crashed_on(rig: Rig, raw: bytes) -> None:
    r = await rig.http.post("/api/route", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and _CJK.search(r.json()["message"])
    assert (await rig.http.get("/healthz")).json()["ok"] is True


# --- choosing a group and its QR code --------------------------------------------------------


async def test_choosing_a_small_group_shows_its_qr_code_cached_then_refreshed(rig: Rig) -> None:
    entry = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    choice = (
        await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-nanshan-kjy"})
    ).json()
    assert choice["join"] == "qr" and choice["name"] == "深圳南山科技园福利1群"
    svg = await rig.http.get(choice["qr_url"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text and "入群二维码" in svg.text
    # The page shows the PNG in an <img>: WeChat's long-press 识别图中二维码 reads images.
    r = await rig.http.get(choice["qr_png_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    visit = rig.visit(entry)
    assert (visit.chosen_group, visit.join_method) == ("sz-nanshan-kjy", "qr")
    assert rig.qr_calls == ["sz-nanshan-kjy"]

    rig.clock.set(T0 + timedelta(days=5, hours=23))
    assert (await rig.http.get(choice["qr_png_url"])).content == r.content  # cached, still fresh
    assert len(rig.qr_calls) == 1
    rig.clock.set(T0 + timedelta(days=6, minutes=1))
    refreshed = await rig.http.get(choice["qr_png_url"])
    assert refreshed.status_code == 200 and refreshed.content != r.content  # refreshed
    assert len(rig.qr_calls) == 2


async def test_a_group_of_200_or_more_has_no_qr_and_the_bot_invites(rig: Rig) -> None:
    entry = (await rig.route(address="福田CBD")).json()["entry"]
    r = await rig.http.get(f"/api/groups/sz-futian-cbd/qr.svg?entry={entry}")
    assert r.status_code == 409 and "群福助手" in r.json()["message"]
    assert rig.qr_calls == []
    choice = (
        await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-futian-cbd"})
    ).json()
    assert choice["join"] == "invite" and "qr_url" not in choice
    code = choice["invite_code"]
    assert f"入群 {code}" in choice["hint"]

    rig.gateway.say("u1", f"入群 {code}")
    await rig.settle()
    acts = [
        (s.action.__class__.__name__, getattr(s.action, "room", None))
        for s in rig.gateway.transcript
    ]
    assert ("Invite", "sz-futian-cbd") in acts
    rig.clock.set(T0 + timedelta(hours=3))  # accepted hours later: still matched by contact
    rig.gateway.join("sz-futian-cbd", ["u1"])
    await rig.settle()
    visit = rig.visit(entry)
    assert visit.person_id == "u1" and visit.joined_at is not None
    with Session(rig.bot.engine) as s:
        membership = s.get(Membership, visit.membership_id)
        assert membership is not None and membership.channel == "wx-menu"


async def test_an_invite_code_invites_only_the_person_who_sent_it_first(rig: Rig) -> None:
    entry = (await rig.route(address="福田CBD")).json()["entry"]
    choice = (
        await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-futian-cbd"})
    ).json()
    code = choice["invite_code"]
    rig.gateway.add_contact("u2", "李四")
    rig.gateway.say("u1", f"入群 {code}")
    rig.gateway.say("u1", f"入群 {code}")  # the holder may send it again
    rig.gateway.say("u2", f"入群 {code.lower()}")  # a forwarded screenshot
    await rig.settle()
    invited = [s.action.contact for s in rig.gateway.transcript if isinstance(s.action, Invite)]
    assert set(invited) == {"u1"}
    told = [row.text for row in rig.outbox_to("u2")]
    assert len(told) == 1 and "已由其他微信号使用过" in told[0] and code in told[0]
    assert rig.visit(entry).invited_contact == "u1"


async def test_an_unknown_invite_code_is_answered(rig: Rig) -> None:
    rig.gateway.say("u1", "入群 ZZZZZZ")
    await rig.settle()
    assert any("没有找到入群码" in getattr(s.action, "text", "") for s in rig.gateway.transcript)


async def test_a_qr_join_is_matched_by_group_and_time_window(rig: Rig) -> None:
    first = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    second = (await rig.route(channel="branch-poster", lat=KJY_WGS[0], lon=KJY_WGS[1])).json()[
        "entry"
    ]
    for minutes, entry in enumerate((first, second)):
        rig.clock.set(T0 + timedelta(minutes=minutes))
        assert (
            await rig.http.get(f"/api/groups/sz-nanshan-kjy/qr.svg?entry={entry}")
        ).status_code == 200
    rig.gateway.add_contact("u2", "李四")
    rig.clock.set(T0 + timedelta(minutes=5))
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.settle()
    assert rig.visit(first).person_id == "u1"  # oldest pending choice first
    rig.clock.set(T0 + timedelta(hours=2))  # outside the 30-minute window
    rig.gateway.join("sz-nanshan-kjy", ["u2"])
    await rig.settle()
    assert rig.visit(second).joined_at is None


async def test_full_and_unknown_groups_and_missing_entries_are_refused(rig: Rig) -> None:
    entry = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    full = await rig.http.get(f"/api/groups/sz-nanshan-kjy-2/qr.svg?entry={entry}")
    assert full.status_code == 409 and "满员" in full.json()["message"]
    unknown = await rig.http.post("/api/choose", json={"entry": entry, "group": "nope"})
    assert unknown.status_code == 404
    no_entry = await rig.http.get("/api/groups/sz-nanshan-kjy/qr.svg")
    assert no_entry.status_code == 400 and "刷新页面" in no_entry.json()["message"]
    assert "entry" not in no_entry.json()["message"]  # no parameter names shown to people
    no_group = await rig.http.post("/api/choose", json={"entry": entry})
    assert no_group.status_code == 400


async def test_a_group_can_be_chosen_only_after_locating_and_before_joining(rig: Rig) -> None:
    entry = _entry_of((await rig.http.get("/join", params={"channel": "wx-menu"})).text)["entry"]
    early = await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-nanshan-kjy"})
    assert early.status_code == 409 and "位置" in early.json()["message"]

    await rig.route(entry=entry, lat=KJY_WGS[0], lon=KJY_WGS[1])
    assert (await rig.http.get(f"/api/groups/sz-nanshan-kjy/qr.svg?entry={entry}")).is_success
    rig.clock.set(T0 + timedelta(minutes=1))
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.settle()
    assert rig.visit(entry).joined_at is not None
    late = await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-nanshan-szu"})
    assert late.status_code == 409 and "已经" in late.json()["message"]


# --- overflow ------------------------------------------------------------------------------


async def test_a_full_area_offers_groups_beyond_and_tells_ops_once_a_day(rig: Rig) -> None:
    rig.set_members("sz-baoan-xx", 500)
    r = await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")
    body = r.json()
    assert r.status_code == 200 and body["overflow"] is True
    assert body["groups"] and "sz-baoan-xx" not in [g["group"] for g in body["groups"]]
    assert body["groups"][0]["distance_m"] > 5000
    await rig.route(lat=XIXIANG[0] + 0.001, lon=XIXIANG[1], crs="gcj02")  # same cell, same day
    await rig.settle()
    for ops in ("ops1", "ops2"):
        (row,) = rig.outbox_to(ops)
        assert "新群需求" in (row.text or "") and "1个福利群已全部满员" in (row.text or "")
    rig.clock.set(T0 + timedelta(days=1))
    await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")
    assert len(rig.outbox_to("ops1")) == 2


async def test_a_private_location_in_a_full_area_also_raises_the_alert(rig: Rig) -> None:
    rig.set_members("sz-baoan-xx", 500)
    rig.gateway.share_location("u1", *XIXIANG)
    await rig.settle()
    assert len(rig.outbox_to("ops1")) == 1


# --- gazetteer and funnel ------------------------------------------------------------------


async def test_the_gazetteer_lists_cities_and_districts(rig: Rig) -> None:
    cities = (await rig.http.get("/api/gazetteer")).json()["cities"]
    assert {c["name"] for c in cities} == {"深圳", "广州", "上海"}
    assert "南山区" in next(c for c in cities if c["name"] == "深圳")["districts"]


async def test_qunfu_funnel_prints_the_stages_per_channel(rig: Rig, tmp_path: Path) -> None:
    for channel, stage in (("wx-menu", "chosen"), ("wx-menu", "visit"), ("sms-alert", "located")):
        entry = _entry_of((await rig.http.get("/join", params={"channel": channel})).text)["entry"]
        if stage != "visit":
            await rig.route(channel=channel, entry=entry, lat=KJY_WGS[0], lon=KJY_WGS[1])
        if stage == "chosen":
            await rig.http.get(f"/api/groups/sz-nanshan-kjy/qr.svg?entry={entry}")
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    await rig.settle()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        f"database: {{url: 'sqlite:///{tmp_path / 'qunfu.db'}'}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli,
        ["funnel", "--config", str(config), "--from", "2026-12-01", "--to", "2026-12-01", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["channel"]: r for r in report["channels"]}
    assert [rows["wx-menu"][k] for k in ("visits", "located", "chosen", "joined")] == [2, 1, 1, 1]
    assert [rows["sms-alert"][k] for k in ("visits", "located", "chosen")] == [1, 1, 0]
    assert rows["wx-menu"]["conversion"]["located"] == 0.5
    assert report["total"]["visits"] == 3
    text = CliRunner().invoke(
        cli, ["funnel", "--config", str(config), "--from", "2026-12-01", "--to", "2026-12-01"]
    )
    assert text.exit_code == 0 and "公众号菜单" in text.stdout
    bad = CliRunner().invoke(
        cli, ["funnel", "--config", str(config), "--from", "2026-12-02", "--to", "2026-12-01"]
    )
    assert bad.exit_code == 1


async def test_health_says_yes_or_no_and_the_backlog_only(rig: Rig) -> None:
    body = (await rig.http.get("/healthz")).json()
    assert body == {
        "ok": True,
        "gateway": {"ready": True, "connected": True, "logged_in": True, "reconnects": 0},
        "outbox": {"pending": 0},
    }


async def test_distances_are_worded_by_the_server_as_in_chats(rig: Rig) -> None:
    from bot.templating import distance

    body = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()
    assert body["radius_text"] == "5公里"  # a radius as people say it, not "5.0公里"
    assert [g["distance_text"] for g in body["groups"]] == [
        distance(g["distance_m"]) for g in body["groups"]
    ]


# --- routing that respects people (issue 7) ------------------------------------------------


async def test_an_address_in_another_city_is_refused_never_placed_elsewhere(rig: Rig) -> None:
    # Observed: "北京朝阳区国贸" was placed at 深圳罗湖区国贸 and a Shenzhen group offered at 731 m.
    r = await rig.route(address="北京朝阳区国贸")
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["error"] == "city_not_covered" and "北京" in body["message"]
    assert "groups" not in body
    city_only = await rig.route(address="北京")
    assert city_only.status_code == 404 and city_only.json()["error"] == "city_not_covered"
    district_only = await rig.route(address="朝阳区国贸")
    assert district_only.status_code == 404
    assert "朝阳区" in district_only.json()["message"]


async def test_a_city_or_a_district_alone_is_placed_inside_it(rig: Rig) -> None:
    city = (await rig.route(address="广州市")).json()
    assert city["label"] == "广州" and city["groups"][0]["group"].startswith("gz-")
    district = (await rig.route(address="南山区")).json()
    assert district["label"] == "深圳南山区"
    assert rig.visit(district["entry"]).area == "district:深圳:南山区"


async def test_no_group_nearby_and_all_full_nearby_are_different_answers(rig: Rig) -> None:
    none = (await rig.route(city="深圳", district="龙岗区")).json()
    assert none["overflow"] is True and none["nearby"] == "none"
    # Observed: "附近5.0公里内的福利群已满员…新群开通后会第一时间通知您" though none exists.
    assert "还没有福利群" in none["notice"] and "满员" not in none["notice"]
    # The page does not know who the visitor is: it says how to get on the waitlist.
    assert "先在微信中搜索「群福助手」并添加为好友，再发送您的位置" in none["notice"]
    assert "5公里内" in none["notice"] and "5.0公里" not in none["notice"]

    rig.set_members("sz-baoan-xx", 500)
    full = (await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")).json()
    assert full["nearby"] == "full" and full["full_nearby"] == 1
    assert "1个福利群都已满员" in full["notice"] and "还没有" not in full["notice"]

    room = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()
    assert room["nearby"] == "room" and room["notice"] is None


async def test_an_invite_code_for_a_group_the_person_is_in_is_not_used(rig: Rig) -> None:
    rig.gateway.join("sz-futian-cbd", ["u1"])
    await rig.settle()
    entry = (await rig.route(address="福田CBD")).json()["entry"]
    choice = (
        await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-futian-cbd"})
    ).json()
    rig.gateway.say("u1", f"入群 {choice['invite_code']}")
    await rig.settle()
    assert not [s for s in rig.gateway.transcript if s.action.__class__.__name__ == "Invite"]
    texts = [getattr(s.action, "text", "") for s in rig.gateway.transcript]
    assert any(t.startswith("您已在「深圳福田CBD福利1群」中") for t in texts), texts


# --- lean writes: one write per route request, off the event loop, no read of every group -----


@dataclass
class _Statements:
    """SQL run against the bot's engine: (thread id, statement head), and commits."""

    seen: list[tuple[int, str]]
    commits: int = 0

    def writes(self) -> list[str]:
        return [sql for _, sql in self.seen if sql.startswith(("INSERT", "UPDATE", "DELETE"))]


def _watch(engine: object) -> _Statements:
    import threading

    from sqlalchemy import event

    watched = _Statements([])

    def on_execute(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
        watched.seen.append((threading.get_ident(), " ".join(statement.split())[:60]))

    def on_commit(conn) -> None:  # noqa: ANN001
        watched.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    return watched


async def test_a_route_request_writes_its_visit_once_off_the_loop(rig: Rig) -> None:
    import threading

    loop_thread = threading.get_ident()
    watched = _watch(rig.bot.engine)
    first = await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])
    assert first.status_code == 200
    # Observed: an INSERT of the visit, then a SELECT and an UPDATE in a second transaction.
    assert [w.split(" ")[0] for w in watched.writes()] == ["INSERT"]
    assert watched.commits == 1
    # Observed: every statement ran on the event loop's thread, stalling other requests.
    assert watched.seen and all(thread != loop_thread for thread, _ in watched.seen)
    visit = rig.visit(first.json()["entry"])
    assert visit.located_at == visit.visited_at and visit.located_how == "gps"

    watched.seen.clear()
    watched.commits = 0
    again = await rig.route(entry=first.json()["entry"], city="深圳", district="福田区")
    assert again.status_code == 200 and again.json()["entry"] == first.json()["entry"]
    assert [w.split(" ")[0] for w in watched.writes()] == ["UPDATE"]
    assert watched.commits == 1
    assert all(thread != loop_thread for thread, _ in watched.seen)
    # The first location time is kept; how and where follow the latest try.
    moved = rig.visit(first.json()["entry"])
    assert moved.located_at == visit.located_at and moved.located_how == "district"


async def test_a_route_request_reads_no_member_counts_from_the_database(rig: Rig) -> None:
    watched = _watch(rig.bot.engine)
    for _ in range(3):
        assert (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).status_code == 200
    # Observed: SELECT welfare_group.id, welfare_group.member_count … (every group) per request.
    assert not [sql for _, sql in watched.seen if "welfare_group" in sql]


async def test_joins_and_leaves_move_the_counts_the_entry_api_sees(rig: Rig) -> None:
    capacity = rig.bot.ops.groups["sz-baoan-xx"].capacity
    rig.set_members("sz-baoan-xx", capacity - 1)
    rig.gateway.add_contact("u2", "李四")
    rig.gateway.join("sz-baoan-xx", ["u2"])  # the last seat, through the dispatcher
    await rig.settle()
    full = (await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")).json()
    assert full["nearby"] == "full" and "sz-baoan-xx" not in [g["group"] for g in full["groups"]]

    rig.gateway.leave("sz-baoan-xx", ["u2"])
    await rig.settle()
    room = (await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")).json()
    assert room["nearby"] == "room" and room["groups"][0]["group"] == "sz-baoan-xx"
    assert room["groups"][0]["members"] == capacity - 1


async def test_an_unknown_entry_is_refused_before_a_location_problem(rig: Rig) -> None:
    unknown = await rig.route(entry="nosuchvisit00", city="深圳", district="不存在区")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unknown_entry"
    first = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    other = await rig.http.post(
        "/api/route", json={"channel": "sms-alert", "entry": first, "lat": 22.5, "lon": 113.9}
    )
    assert other.status_code == 400 and other.json()["error"] == "entry_channel_mismatch"
    assert rig.visit(first).located_how == "gps"  # untouched by the refused try


# --- web/texts QA review: reachable fallbacks, damaged links, honest texts -------------------


async def test_exactly_the_scan_limit_is_invite_only_and_worded_as_full_at_it(rig: Rig) -> None:
    rig.set_members("sz-nanshan-kjy", 200)
    entry = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    choice = (
        await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-nanshan-kjy"})
    ).json()
    assert choice["join"] == "invite"
    assert "该群已满200人" in choice["hint"] and "超过" not in choice["hint"]
    # On WeChat one can only message a friend: the hint says how to add the bot.
    assert "先在微信中搜索「群福助手」并添加为好友" in choice["hint"]
    assert f"再发送：入群 {choice['invite_code']}" in choice["hint"]


async def test_the_bot_wechat_id_and_contact_qr_tell_people_how_to_add_the_bot(
    rig: Rig,
) -> None:
    settings = rig.bot.entry._settings
    rig.bot.entry._settings = settings.model_copy(
        update={"bot_wechat_id": "qunfu_helper", "bot_contact_qr": "https://u.wechat.com/x"}
    )
    try:
        entry = (await rig.route(address="福田CBD")).json()["entry"]
        choice = (
            await rig.http.post("/api/choose", json={"entry": entry, "group": "sz-futian-cbd"})
        ).json()
        assert "先添加「群福助手」为好友（微信号：qunfu_helper" in choice["hint"]
        assert f"再发送：入群 {choice['invite_code']}" in choice["hint"]
        none = (await rig.route(city="深圳", district="龙岗区")).json()
        assert "先添加「群福助手」为好友（微信号：qunfu_helper" in none["notice"]
    finally:
        rig.bot.entry._settings = settings
    assert (await rig.http.get("/join/bot-qr.png")).status_code == 404  # none configured


async def test_the_bot_contact_qr_is_served_and_named_on_the_page(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {
            "entry": {"bot_contact_qr": "https://u.wechat.com/abc", "bot_wechat_id": "qf_bot"},
            "simulator": {"demo": None},
        },
        ROOT,
    )
    clock = VirtualClock(T0)
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    bot = Qunfu(settings, clock, gateway, load_source(settings), database_url=url)
    try:
        transport = httpx.ASGITransport(app=create_app(bot))
        async with httpx.AsyncClient(transport=transport, base_url="http://qunfu.test") as http:
            page = await http.get("/join", params={"channel": "wx-menu"})
            data = _entry_of(page.text)
            assert data["bot_qr_url"] == "/join/bot-qr.png" and data["bot_wechat_id"] == "qf_bot"
            png = await http.get("/join/bot-qr.png")
            assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    finally:
        bot.close()


async def test_far_offers_are_worded_with_their_distance(rig: Rig) -> None:
    rig.set_members("sz-baoan-xx", 500)
    body = (await rig.route(lat=XIXIANG[0], lon=XIXIANG[1], crs="gcj02")).json()
    assert "稍远一些" not in body["notice"]
    assert f"最近的约{body['groups'][0]['distance_text']}" in body["notice"]


@pytest.mark.parametrize(
    ("channel", "canonical"),
    [
        ("WX-MENU", "wx-menu"),
        ("sms-alert。", "sms-alert"),
        ("sms-alert.", "sms-alert"),
        (" sms-alert ", "sms-alert"),
        ("sms-alert）", "sms-alert"),
    ],
)
async def test_a_slightly_damaged_channel_still_opens_the_page(
    rig: Rig, channel: str, canonical: str
) -> None:
    r = await rig.http.get("/join", params={"channel": channel})
    assert r.status_code == 200, r.text
    data = _entry_of(r.text)
    assert data["channel"] == canonical and rig.visit(data["entry"]).channel == canonical
    routed = await rig.route(channel=channel, entry=data["entry"], lat=KJY_WGS[0], lon=KJY_WGS[1])
    assert routed.status_code == 200 and routed.json()["groups"]


async def test_the_encoded_full_width_stop_is_read_as_the_channel(rig: Rig) -> None:
    r = await rig.http.get("/join?channel=sms-alert%E3%80%82")
    assert r.status_code == 200 and _entry_of(r.text)["channel"] == "sms-alert"


async def test_messages_never_show_parameter_names(rig: Rig) -> None:
    for params in ({}, {"channel": "!!"}):
        page = await rig.http.get("/join", params=params)
        error = re.search(r'<p id="error"[^>]*>(.*?)</p>', page.text, re.S)
        assert error and _CJK.search(error.group(1))
        assert "channel" not in error.group(1)
    r = await rig.http.post("/api/route", json={"lat": 22.5, "lon": 113.9})
    assert r.status_code == 400 and "channel" not in r.json()["message"]


async def test_unknown_paths_get_a_chinese_page_in_browsers_and_json_for_the_api(rig: Rig) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = await rig.http.get("/joinn", headers=html)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text and "detail" not in page.text
    api = await rig.http.get("/api/nope", headers=html)
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    plain = await rig.http.get("/joinn")
    assert plain.status_code == 404 and plain.json() == {"detail": "Not Found"}


async def test_the_svg_qr_endpoint_still_works(rig: Rig) -> None:
    entry = (await rig.route(lat=KJY_WGS[0], lon=KJY_WGS[1])).json()["entry"]
    r = await rig.http.get(f"/api/groups/sz-nanshan-kjy/qr.svg?entry={entry}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in r.text and "入群二维码" in r.text


_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
_TAILS = st.text(alphabet=" 。.，,！!？?）)」 \u3000", max_size=4)


@given(channel=_IDS, tail=_TAILS, upper=st.booleans())
def test_normalising_a_damaged_channel_gives_back_the_id(
    channel: str, tail: str, upper: bool
) -> None:
    from bot.entry.channels import normalise_channel

    damaged = (channel.upper() if upper else channel) + tail
    assert normalise_channel(damaged) == channel
    assert normalise_channel(normalise_channel(damaged)) == channel  # idempotent
