"""Contact cards, link cards and images through a real puppet service reach the domain with their
message kind (issue 11, item 4: moderation needs to know a card from a text)."""

from __future__ import annotations

import pytest

from bot.events import MessageReceived
from bot.gateways.wechaty import WechatyGateway, link_card_text

from .conftest import EventTap, PuppetHarness

ROOM = "sz-nanshan-kjy@chatroom"


async def _card(h: PuppetHarness, kind: str, text: str = "") -> None:
    await h.command("card", **{"from": "u1"}, room=ROOM, type=kind, text=text)


@pytest.mark.parametrize(
    ("puppet_type", "kind", "text"),
    [
        ("Contact", "contact_card", ""),
        ("Url", "link_card", "https://mock.url"),  # the mock service's messageUrl answer
        ("Image", "image", ""),
    ],
)
async def test_non_text_message_arrives_with_its_kind(
    gateway: WechatyGateway,
    puppet_service: PuppetHarness,
    tap: EventTap,
    puppet_type: str,
    kind: str,
    text: str,
) -> None:
    await puppet_service.contact("u1", "张三")
    await puppet_service.room(ROOM, ["u1"], topic="深圳南山科技园福利1群")
    await _card(puppet_service, puppet_type, "<msg><appmsg>raw platform xml</appmsg></msg>")
    event = await tap.next(lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived)
    assert (event.kind, event.text, event.room_id, event.sender.id) == (kind, text, ROOM, "u1")


async def test_private_card_is_dropped(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await puppet_service.contact("u1", "张三")
    await puppet_service.command("card", **{"from": "u1"}, type="Contact")
    await puppet_service.say("u1", "你好")
    event = await tap.next(lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived) and event.text == "你好"
    assert [e for e in tap.events if isinstance(e, MessageReceived)] == [event]


async def test_plain_text_is_still_text(
    gateway: WechatyGateway, puppet_service: PuppetHarness, tap: EventTap
) -> None:
    await puppet_service.contact("u1", "张三")
    await puppet_service.say("u1", "你好")
    event = await tap.next(lambda e: isinstance(e, MessageReceived))
    assert isinstance(event, MessageReceived) and event.kind == "text" and event.text == "你好"


@pytest.mark.parametrize(
    ("url_link", "raw", "expected"),
    [
        (
            '{"title": "办卡", "url": "https://evil.example/x?a=1"}',
            "",
            "https://evil.example/x?a=1",
        ),
        ("", "<msg><appmsg><url>http://a.example/p</url></appmsg></msg>", "http://a.example/p"),
        ("not json", "标题 https://b.example/q 描述", "https://b.example/q"),
        ('{"title": "no url"}', "<msg/>", ""),
        ('["a list"]', "", ""),
        ('{"url": 5}', "", ""),
    ],
)
def test_link_card_text_reads_the_url(url_link: str, raw: str, expected: str) -> None:
    assert link_card_text(url_link, raw) == expected
