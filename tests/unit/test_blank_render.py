"""A template that renders nothing for a group (an ``{% if %}`` that leaves it out).

An empty message is never sent: the fan-out, ``qunfu preview`` and the welcome skip that group,
``qunfu explain`` says why, and ``qunfu check`` warns at the campaign's ``template:``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.campaign_warnings import campaign_warnings
from bot.campaigns import CampaignPlanner
from bot.config import QuietHours
from bot.diagnosis import CampaignDiagnosis
from bot.opsdata import load_opsdata
from bot.templating import TemplateRenderer
from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig

SH_ONLY = '{% if group.city == "上海" %}上海专享：{{ data.perk }}{% endif %}\n'
CAMPAIGN = (
    "id: sh-only\nname: 上海专享\nkind: daily\nschedule: {at: '15:00'}\n"
    "template: sh-only.j2\ndata: {perk: 咖啡买一送一}\n"
)
THU = date(2026, 12, 3)
FIRE = datetime(2026, 12, 3, 15, 0, tzinfo=SHANGHAI)


def ops_with_sh_only(tmp_path: Path) -> Path:
    base = copy_ops(tmp_path)
    (base / "templates" / "sh-only.j2").write_text(SH_ONLY, encoding="utf-8")
    (base / "campaigns" / "sh-only.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return base


def planner(base: Path) -> CampaignPlanner:
    return CampaignPlanner(load_opsdata(base / "campaigns", base / "templates"), QuietHours())


def test_a_blank_render_is_not_a_delivery(tmp_path: Path) -> None:
    p = planner(ops_with_sh_only(tmp_path))
    deliveries = p.deliveries(p.ops.campaigns["sh-only"], FIRE)
    assert deliveries, "the Shanghai groups still get theirs"
    assert {d.group.city for d in deliveries} == {"上海"}
    assert all(d.text.startswith("上海专享：") for d in deliveries)


def test_preview_does_not_count_a_blank_send(tmp_path: Path) -> None:
    p = planner(ops_with_sh_only(tmp_path))
    start = datetime(2026, 12, 3, tzinfo=SHANGHAI)
    planned = list(p.plan(start, start.replace(day=4), group_id="sz-baoan-xx"))
    assert planned and "sh-only" not in {d.campaign.id for d in planned}
    assert all(d.text.strip() for d in planned)


def test_explain_says_the_template_renders_nothing_there(tmp_path: Path) -> None:
    p = planner(ops_with_sh_only(tmp_path))
    diag = CampaignDiagnosis(p)
    c = p.ops.campaigns["sh-only"]
    (sz,) = diag.explain(c, THU, [p.ops.groups["sz-baoan-xx"]])
    assert not sz.sends and [r.code for r in sz.reasons] == ["blank_render"]
    assert "sh-only.j2 renders nothing for this group" in sz.reasons[0].message
    (sh,) = diag.explain(c, THU, [p.ops.groups["sh-pudong-ljz"]])
    assert sh.sends and sh.reasons == ()


def test_check_warns_at_the_template_with_a_count_and_an_example(tmp_path: Path) -> None:
    base = ops_with_sh_only(tmp_path)
    ops = load_opsdata(base / "campaigns", base / "templates")
    found = campaign_warnings(ops, bot_settings(base), FIRE)
    (w,) = [p for p in found if "renders nothing" in p.message]
    assert (w.path.name, w.line, w.col) == ("sh-only.yaml", 5, 11)
    assert "sh-only.j2 renders nothing for 11 of 15 targeted group(s)" in w.message
    assert "gz-haizhu-jnx" in w.message


def test_a_template_with_text_outside_every_if_always_prints() -> None:
    r = TemplateRenderer({"a.j2": SH_ONLY, "b.j2": "你好{% if x %}!{% endif %}", "c.j2": " \n"})
    assert not r.always_prints("a.j2")
    assert r.always_prints("b.j2")
    assert not r.always_prints("c.j2")


async def test_a_blank_welcome_is_not_sent(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    (base / "templates" / "welcome.j2").write_text(
        '{% if group.city == "上海" %}欢迎 {{ group.name }}{% endif %}', encoding="utf-8"
    )
    settings = bot_settings(base, database={"url": f"sqlite:///{tmp_path}/q.db"})
    rig = make_rig(settings, datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI))
    rig.gateway.add_contact("u1", "张三")
    rig.gateway.join("sz-nanshan-kjy", ["u1"])
    rig.gateway.join("sh-pudong-ljz", ["u1"])
    await rig.advance_to(datetime(2026, 12, 1, 10, 5, tzinfo=SHANGHAI))
    says = [r for r in rig.records() if r["action"] == "say"]
    assert [r["to"] for r in says] == ["room:sh-pudong-ljz"]
