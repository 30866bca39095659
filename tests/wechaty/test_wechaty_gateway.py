"""The Wechaty gateway against a real puppet service (Node wechaty-puppet-service + mock puppet)."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import WechatySettings
from bot.events import (
    Invite,
    LocationShared,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    Remove,
    Say,
    contact_conv,
    room_conv,
)
from bot.gateways import _wechaty_compat as wire
from bot.gateways.base import ChatGateway, GatewayError
from bot.gateways.wechaty import WechatyGateway

from .conftest import EventTap, PuppetHarness, free_port

ROOM = "sz-nanshan-kjy@chatroom"


async def _world(h: PuppetHarness) -> None:
    await h.contact("u1", "张三")
    await h.contact("u2", "李四")
    await h.room(ROOM, ["u1"], topic="深圳南山科技园福利1群")


async def test_is_a_chat_gateway(gateway: WechatyGateway, puppet_service: PuppetHarness) -> None:
    assert isinstance(gateway, ChatGateway)
    assert gateway.bot_id == puppet_service.bot_id
    health = gateway.health()
    assert health["connected"] and health["logged_in"] and health["reconnects"] == 0
    assert puppet_service.token not in str(health)


async def test_room_message_with_mention_arrives(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await puppet_service.say("u1", "@群福助手 年费怎么减免?", room=ROOM, mentions=(gateway.bot_id,))
    event = await tap.next(lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived)
    assert event.room_id == ROOM
    assert event.sender.id == "u1" and event.sender.name == "张三"
    assert event.text == "@群福助手 年费怎么减免?"
    assert gateway.bot_id in event.mentions


async def test_private_message_arrives(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await puppet_service.say("u2", "我要进群")
    event = await tap.next(lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived)
    assert event.room_id is None and event.sender.id == "u2" and event.text == "我要进群"


async def test_join_and_leave_arrive(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await puppet_service.join(ROOM, ["u2"], inviter="u1")
    joined = await tap.next(lambda e: isinstance(e, MemberJoined))
    assert isinstance(joined, MemberJoined)
    assert joined.room_id == ROOM and joined.inviter_id == "u1"
    assert [(p.id, p.name) for p in joined.members] == [("u2", "李四")]

    await puppet_service.leave(ROOM, ["u2"])
    left = await tap.next(lambda e: isinstance(e, MemberLeft))
    assert isinstance(left, MemberLeft) and left.member_ids == ("u2",)


async def test_location_arrives_and_malformed_one_is_dropped(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await puppet_service.command("location", **{"from": "u1"}, raw="<msg><location x='oops'/>")
    await puppet_service.command(
        "location", **{"from": "u1"}, lat=22.5405, lon=113.9345, label="科技园"
    )
    event = await tap.next(lambda e: isinstance(e, LocationShared))
    assert isinstance(event, LocationShared)
    assert (event.lat, event.lon, event.crs) == (22.5405, 113.9345, "gcj02")
    assert event.sender.id == "u1" and event.room_id is None and event.label == "科技园"
    assert [e for e in tap.events if isinstance(e, LocationShared)] == [event]


async def test_say_with_mention_reaches_the_room_and_its_echo_is_ignored(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await gateway.perform(Say(room_conv(ROOM), "@张三 欢迎!", mentions=("u1",)))
    sent = await puppet_service.wait_sent(lambda r: r["event"] == "sent")
    assert sent == {
        "event": "sent",
        "conversation": ROOM,
        "room": True,
        "text": "@张三 欢迎!",
        "mentions": ["u1"],
    }
    # The service echoes the bot's own message back as a message event; a member's message
    # sent after it proves the echo was read and dropped, not just slow.
    await puppet_service.say("u1", "谢谢", room=ROOM)
    await tap.next(lambda e: isinstance(e, MessageReceived) and e.text == "谢谢")
    assert [
        e for e in tap.events if isinstance(e, MessageReceived) and e.sender.id == gateway.bot_id
    ] == []


async def test_message_typed_on_the_bot_account_is_ignored(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await puppet_service.say(puppet_service.bot_id, "手机上发的", room=ROOM)
    await puppet_service.say("u1", "after", room=ROOM)
    await tap.next(lambda e: isinstance(e, MessageReceived) and e.text == "after")
    assert all(e.sender.id != gateway.bot_id for e in tap.events if isinstance(e, MessageReceived))


async def test_say_to_contact_invite_remove_and_qrcode(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await gateway.perform(Say(contact_conv("u2"), "您好", mentions=("u2",)))
    sent = await puppet_service.wait_sent(lambda r: r["event"] == "sent")
    assert (sent["conversation"], sent["room"], sent["mentions"]) == ("u2", False, [])

    await gateway.perform(Invite(room=ROOM, contact="u2"))
    await puppet_service.wait_sent(
        lambda r: r == {"event": "invite", "room": ROOM, "contact": "u2"}
    )
    joined = await tap.next(lambda e: isinstance(e, MemberJoined))
    assert isinstance(joined, MemberJoined) and joined.members[0].id == "u2"

    await gateway.perform(Remove(room=ROOM, contact="u2"))
    await puppet_service.wait_sent(lambda r: r["event"] == "remove")
    await tap.next(lambda e: isinstance(e, MemberLeft))

    assert await gateway.room_qrcode(ROOM) == f"{ROOM} mock qrcode"


async def test_unknown_sender_and_unknown_room_are_dropped(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    with pytest.raises(GatewayError):
        await gateway.perform(Say(room_conv("nowhere@chatroom"), "hi"))
    await puppet_service.say("u1", "still fine", room=ROOM)
    await tap.next(lambda e: isinstance(e, MessageReceived) and e.text == "still fine")
    assert gateway.health()["connected"]


async def test_friendship_request_is_accepted(
    gateway: WechatyGateway, puppet_service: PuppetHarness
) -> None:
    await puppet_service.contact("u3", "王五")
    reply = await puppet_service.command("friendship", **{"from": "u3"}, hello="我想进群")
    await puppet_service.wait_sent(
        lambda r: r == {"event": "friendship-accept", "friendship": reply["friendship"]}
    )


async def test_service_restart_reconnects_and_later_sends_arrive(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await _world(puppet_service)
    await gateway.perform(Say(room_conv(ROOM), "before"))
    await puppet_service.wait_sent(lambda r: r.get("text") == "before")

    await puppet_service.stop()
    errors = 0
    for _ in range(50):
        try:
            await gateway.perform(Say(room_conv(ROOM), "while down"))
        except GatewayError:
            errors += 1
            if not gateway.health()["connected"]:
                break
        await asyncio.sleep(0.1)
    assert errors and not gateway.health()["connected"]

    await puppet_service.start()
    await gateway.wait_logged_in(30)
    await gateway.perform(Say(room_conv(ROOM), "after", mentions=("u1",)))
    sent = await puppet_service.wait_sent(lambda r: r.get("text") == "after")
    assert sent["mentions"] == ["u1"]
    assert gateway.health()["reconnects"] >= 1

    await puppet_service.say("u1", "回来了", room=ROOM)
    await tap.next(lambda e: isinstance(e, MessageReceived) and e.text == "回来了")


async def test_wrong_token_is_reported_and_retried(puppet_service: PuppetHarness) -> None:
    gw = WechatyGateway(
        puppet_service.endpoint, "not-the-token", backoff=(0.1, 0.2), connect_timeout=3.0
    )
    async with gw:
        for _ in range(100):
            if gw.health()["last_error"]:
                break
            await asyncio.sleep(0.05)
        health = gw.health()
        assert "token" in (health["last_error"] or "")
        assert "not-the-token" not in str(health)
        assert not health["connected"] and not health["logged_in"]
        with pytest.raises(GatewayError):
            await gw.perform(Say(room_conv(ROOM), "hi"))


async def test_unreachable_endpoint_is_reported_not_hung() -> None:
    gw = WechatyGateway(f"127.0.0.1:{free_port()}", "t", backoff=(0.1, 0.2), connect_timeout=2)
    async with gw:
        for _ in range(100):
            if gw.health()["last_error"]:
                break
            await asyncio.sleep(0.05)
        assert "failed" in (gw.health()["last_error"] or "")
        with pytest.raises(GatewayError):
            await gw.room_qrcode(ROOM)


async def test_tls_with_the_service_ca(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .conftest import _require_node

    _require_node()
    harness = PuppetHarness(free_port(), "tls-token", tmp_path / "tls.log", tls=True)
    await harness.start()
    try:
        ca = tmp_path / "ca.pem"
        ca.write_text(harness.ready["ca"])
        settings = WechatySettings(tls=True, tls_ca=ca, server_name=harness.ready["server_name"])
        env = {
            "WECHATY_PUPPET_SERVICE_ENDPOINT": harness.endpoint,
            "WECHATY_PUPPET_SERVICE_TOKEN": harness.token,
        }
        async with WechatyGateway.from_env(settings, env=env, backoff=(0.2, 1.0)) as gw:
            await gw.wait_logged_in(30)
            await gw.perform(Say(contact_conv(harness.bot_id), "over tls"))
            await harness.wait_sent(lambda r: r.get("text") == "over tls")
            assert gw.health()["tls"] is True
    finally:
        await harness.stop()


def test_from_env_takes_the_whole_settings_too() -> None:
    from bot.config import Settings

    env = {"WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:9", "WECHATY_PUPPET_SERVICE_TOKEN": "t"}
    gw = WechatyGateway.from_env(Settings(), env=env)
    assert gw.health()["endpoint"] == "127.0.0.1:9" and gw.health()["connected"] is False


def test_from_env_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="WECHATY_PUPPET_SERVICE_ENDPOINT"):
        WechatyGateway.from_env(WechatySettings(), env={})
    with pytest.raises(ValueError, match="WECHATY_PUPPET_SERVICE_TOKEN"):
        WechatyGateway.from_env(
            WechatySettings(), env={"WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:1"}
        )
    with pytest.raises(ValueError, match="HOST:PORT"):
        WechatyGateway.from_env(
            WechatySettings(),
            env={
                "WECHATY_PUPPET_SERVICE_ENDPOINT": "localhost",
                "WECHATY_PUPPET_SERVICE_TOKEN": "t",
            },
        )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not xml",
        "<msg><location y='1'/></msg>",
        "<msg><location x='91' y='1'/></msg>",
        "<msg><other/></msg>",
    ],
)
def test_malformed_location_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        wire.parse_location(text)


def test_location_text_is_read() -> None:
    pin = wire.parse_location('<msg><location x="22.5" y="113.9" label="路" poiname="店"/></msg>')
    assert (pin.lat, pin.lon, pin.label) == (22.5, 113.9, "店")
