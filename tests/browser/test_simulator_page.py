"""The simulator page (/sim) in Chromium against the real bot (``qunfu run --no-demo``).

Each test plays its own cardholders (unique names), so they share one running bot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

_names = itertools.count(1)
BOT_REPLY_S = 30_000  # ms: the batched welcome waits for its window, then the paced outbox


def unique(name: str) -> str:
    return f"{name}{next(_names)}"


@pytest.fixture
def page(context: Any, qunfu_server: str) -> Iterator[Any]:
    """The simulator page, loaded; browser dialogs (alert) are recorded on ``page.dialogs``."""
    p = context.new_page()
    dialogs: list[str] = []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.dialogs = dialogs
    response = p.goto(f"{qunfu_server}/sim")
    assert response is not None and response.status == 200
    p.wait_for_selector("#rooms li[data-room]")
    yield p


def add_contact(page: Any, name: str) -> str:
    """Create a cardholder through the page; return its contact id (selected in #who)."""
    page.fill("#new-contact-name", name)
    page.click("#add-contact")
    page.wait_for_function(
        "name => { const s = document.getElementById('who');"
        " return s.selectedOptions.length && s.selectedOptions[0].text.startsWith(name); }",
        arg=name,
    )
    return page.eval_on_selector("#who", "s => s.value")


def join(page: Any, room: str) -> None:
    page.click(f'#rooms li[data-room="{room}"]')
    page.click("#join")
    page.wait_for_selector("#leave:not([disabled])")


def test_a_newcomer_joins_is_welcomed_and_gets_an_faq_answer(page: Any, qunfu_server: str) -> None:
    from playwright.sync_api import expect

    before = httpx.get(f"{qunfu_server}/sim/api/rooms").json()
    count = next(r["member_count"] for r in before if r["id"] == "sz-nanshan-kjy")
    name = unique("张三")
    add_contact(page, name)

    join(page, "sz-nanshan-kjy")

    room = page.locator('#rooms li[data-room="sz-nanshan-kjy"]')
    expect(room).to_contain_text(f"群人数 {count + 1}/500")
    expect(room).to_contain_text("已加入")
    expect(page.locator("#chat .msg.system").filter(has_text=f"{name} 加入了群聊")).to_have_count(1)
    welcome = page.locator("#chat .msg.bot").filter(has_text="欢迎加入").filter(has_text=name)
    expect(welcome).to_have_count(1, timeout=BOT_REPLY_S)
    expect(welcome).to_contain_text("深圳南山科技园福利1群")

    page.fill("#say-text", "@群福助手 年费怎么减免")
    page.check("#mention-bot")
    page.click("#say")

    expect(page.locator("#chat .msg.person.mine").filter(has_text="年费怎么减免")).to_have_count(1)
    answer = page.locator("#chat .msg.bot").filter(has_text="免年费")
    expect(answer).to_have_count(1, timeout=BOT_REPLY_S)
    expect(answer).to_contain_text(f"@{name}")
    assert page.locator("#error").is_hidden()


def test_a_script_nickname_is_shown_as_text(page: Any) -> None:
    from playwright.sync_api import expect

    nickname = "<script>alert(1)</script>"
    add_contact(page, nickname)
    join(page, "sz-futian-cbd")

    line = page.locator("#chat .msg.system").filter(has_text=f"{nickname} 加入了群聊")
    expect(line).to_have_count(1)
    expect(page.locator("#room-members")).to_contain_text(nickname)
    expect(page.locator("#who option:checked")).to_contain_text(nickname)
    welcome = page.locator("#chat .msg.bot").filter(has_text="欢迎加入").filter(has_text=nickname)
    expect(welcome).to_have_count(1, timeout=BOT_REPLY_S)
    assert page.locator("#chat script, #room-members script, #who script").count() == 0
    assert page.dialogs == []


def test_sharing_a_location_privately_lists_the_nearest_groups(page: Any) -> None:
    from playwright.sync_api import expect

    name = unique("李四")
    contact = add_contact(page, name)
    page.fill("#lat", "22.5405")
    page.fill("#lon", "113.9345")
    page.select_option("#crs", "gcj02")
    page.click("#share-location")

    expect(page.locator("#private .msg.person.mine")).to_contain_text("22.540500, 113.934500")
    offer = page.locator("#private .msg.bot").filter(has_text="为您找到附近有空位的福利群")
    expect(offer).to_have_count(1, timeout=BOT_REPLY_S)
    expect(offer).to_contain_text("1. 深圳南山科技园福利1群")
    expect(offer).not_to_contain_text("科技园福利2群")  # full: never offered

    page.fill("#private-text", "1")
    page.click("#private-say")
    accept = page.locator("#private .msg.bot button.accept-invite")
    expect(accept).to_have_count(1, timeout=BOT_REPLY_S)
    accept.click()

    expect(page.locator("#room-title")).to_have_text("深圳南山科技园福利1群")
    expect(page.locator("#chat .msg.system").filter(has_text=f"{name} 加入了群聊")).to_have_count(1)
    assert page.eval_on_selector("#who", "s => s.value") == contact


def test_clicking_a_group_on_the_map_fills_the_coordinates(page: Any, qunfu_server: str) -> None:
    from playwright.sync_api import expect

    rooms = httpx.get(f"{qunfu_server}/sim/api/rooms").json()
    szu = next(r["location"] for r in rooms if r["id"] == "sz-nanshan-szu")
    add_contact(page, unique("王五"))
    page.click('#rooms li[data-room="sz-nanshan-szu"]')
    page.click('#map circle[data-room="sz-nanshan-szu"]')

    assert page.input_value("#crs") == "wgs84"
    assert abs(float(page.input_value("#lat")) - szu["lat"]) < 0.002  # within a map pixel or two
    assert abs(float(page.input_value("#lon")) - szu["lon"]) < 0.002
    expect(page.locator("#map-pin")).to_have_count(1)
    page.click("#share-location")
    offer = page.locator("#private .msg.bot").filter(has_text="为您找到附近有空位的福利群")
    expect(offer).to_contain_text("1. 深圳南山深大福利群", timeout=BOT_REPLY_S)


def test_bad_input_shows_a_chinese_error_and_the_bot_keeps_running(
    page: Any, qunfu_server: str
) -> None:
    from playwright.sync_api import expect

    contact = add_contact(page, unique("赵六"))
    page.fill("#lat", "北纬二十二度")
    page.fill("#lon", "113.93")
    page.click("#share-location")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("纬度应为数字")

    page.fill("#lat", "95")
    page.click("#share-location")
    expect(page.locator("#error")).to_contain_text("纬度应在 -90 到 90 之间")

    page.click('#rooms li[data-room="sz-futian-cbd"]')
    page.fill("#say-text", "有人吗")
    page.click("#say")
    expect(page.locator("#error")).to_contain_text("还不在这个群里")

    page.fill("#new-contact-name", "   ")
    page.click("#add-contact")
    expect(page.locator("#error")).to_contain_text("请填写昵称")

    api = f"{qunfu_server}/sim/api"
    cases = [
        ("join", {"contact": "nobody", "room": "sz-nanshan-kjy"}, 404, "没有这个人物"),
        ("join", {"contact": contact, "room": "no-such-room"}, 404, "没有这个群"),
        ("location", {"contact": contact, "lat": "NaN", "lon": 113.9}, 422, "纬度"),
        ("location", {"contact": contact, "lat": 22.5, "lon": 113.9, "crs": "utm"}, 422, "坐标系"),
        ("say", {"contact": contact, "text": ""}, 422, "请填写要说的话"),
    ]
    for path, body, status, message in cases:
        answer = httpx.post(f"{api}/{path}", json=body)
        assert (answer.status_code, path) == (status, path)
        assert message in answer.json()["error"]
    garbled = httpx.post(
        f"{api}/say", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbled.status_code == 400 and "JSON" in garbled.json()["error"]

    assert httpx.get(f"{qunfu_server}/healthz").json()["ok"] is True
    page.fill("#lat", "22.5405")
    page.fill("#lon", "113.9345")
    page.click("#share-location")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#private .msg.bot").filter(has_text="为您找到附近")).to_have_count(
        1, timeout=BOT_REPLY_S
    )
