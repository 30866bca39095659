"""Templates are checked on every branch, from Jinja's AST, against each campaign's context.

Each case below passed the old check (a render with one sample context), which only sees the
branches that sample takes, and would have broken a campaign in production.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.campaigns import CampaignPlanner
from bot.config import QuietHours
from bot.configfile import check_all
from bot.data_keys import unused_data_keys
from bot.opsdata import load_opsdata
from bot.opsdata.bundle import OpsData
from bot.templating import TemplateRenderer, check_templates, context_shape, sample_context
from tests.support import ROOT, copy_ops

FIXTURES = Path(__file__).parent.parent / "fixtures" / "opsdata"
NOW = datetime(2026, 12, 2, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
OPS = load_opsdata(FIXTURES / "campaigns", FIXTURES / "templates")


def problems(meal_j2: str, ops: OpsData = OPS, **templates: str) -> list[str]:
    """``check_templates`` on the fixture ops data, ``meal.j2`` (lunch-deals's) replaced."""
    changed = replace(ops, templates={**ops.templates, "meal.j2": meal_j2, **templates})
    return [str(p.relative_to(FIXTURES)) for p in check_templates(changed, NOW)]


def test_a_typo_in_a_branch_the_sample_never_takes() -> None:
    assert problems("{% if group.city == '火星' %}\n  {{ group.nmae }}\n{% endif %}") == [
        "templates/meal.j2:2:12: 'group' has no attribute 'nmae' (did you mean 'name'?) "
        "(campaign lunch-deals)"
    ]


def test_a_misspelt_attribute_of_each_merchant() -> None:
    # The loop filter keeps every sample merchant out, so rendering never reads m.nmae.
    src = "附近：\n{% for m in merchants if m.distance_m > 9999 %}{{ m.nmae }}{% endfor %}"
    assert problems(src) == [
        "templates/meal.j2:2:53: 'm' has no attribute 'nmae' (did you mean 'name'?) "
        "(campaign lunch-deals)"
    ]
    assert problems("{% for m in merchants %}{{ m.nmae }}{% endfor %}") == [
        "templates/meal.j2:1:30: 'm' has no attribute 'nmae' (did you mean 'name'?) "
        "(campaign lunch-deals)"
    ]


def test_the_loop_variable_exists_only_inside_the_loop() -> None:
    src = (
        "{% for m in merchants %}{{ loop.index }}. {{ m.name }}{% endfor %}\n"
        "{% if merchants|length > 9 %}{{ loop.length }}{% endif %}\n"
        "{% for m in merchants %}{{ loop.indx }}{% endfor %}"
    )
    assert problems(src) == [
        "templates/meal.j2:2:33: undefined variable 'loop' (campaign lunch-deals)",
        "templates/meal.j2:3:33: 'loop' has no attribute 'indx' (did you mean 'index'?) "
        "(campaign lunch-deals)",
    ]


def test_a_macro_body_is_checked_even_when_never_called() -> None:
    src = (
        "{% macro line(m, sep='｜') %}{{ m.name }}{{ sep }}{{ grup.name }}{% endmacro %}\n"
        "{{ group.name }}"
    )
    assert problems(src) == [
        "templates/meal.j2:1:53: undefined variable 'grup' (did you mean 'group'?) "
        "(campaign lunch-deals)"
    ]


def test_guarded_names_are_not_errors() -> None:
    src = (
        "{% if data.card is defined %}{{ data.card }}{% endif %}\n"
        "{{ data.tip | default('') }} {{ data.get('note', '') }}\n"
        "{{ data.x if data.x is defined else '' }}\n"
        "{% if data.y is undefined %}无{% else %}{{ data.y }}{% endif %}\n"
        "{% if data.z is defined and data.z.w %}{{ data.z.w }}{% endif %}"
    )
    assert problems(src) == []


def test_an_unguarded_data_key_only_some_campaigns_have_names_those_lacking_it() -> None:
    lunch = OPS.campaigns["lunch-deals"]
    brunch = lunch.model_copy(update={"id": "brunch", "data": {**lunch.data, "card": "金卡"}})
    supper = lunch.model_copy(update={"id": "supper"})
    ops = replace(OPS, campaigns={**OPS.campaigns, "brunch": brunch, "supper": supper})
    src = "{{ data.meal }}\n{% if now.hour > 30 %}凭{{ data.card }}{% endif %}"
    assert problems(src, ops) == [
        "templates/meal.j2:2:32: 'data' has no attribute 'card' (campaigns lunch-deals, supper)"
    ]
    # `if data.card` itself reads it: StrictUndefined fails there, so that is the error.
    assert problems("{% if data.card %}{{ data.card }}{% endif %}", ops) == [
        "templates/meal.j2:1:12: 'data' has no attribute 'card' (campaigns lunch-deals, supper)"
    ]


def test_attributes_that_the_context_does_not_have() -> None:
    src = (
        "{% if now.hour > 30 %}\n"
        "{{ group.manager }}\n"
        "{{ now.hourr }}\n"
        "{{ merchants.name }}\n"
        "{{ campaign.kind|upper }} {{ group.tags|join('、') }} {{ now.strftime('%H:%M') }}\n"
        "{% endif %}"
    )
    assert problems(src) == [
        "templates/meal.j2:2:10: 'group' has no attribute 'manager' (campaign lunch-deals)",
        "templates/meal.j2:3:8: 'now' has no attribute 'hourr' (did you mean 'hour'?) "
        "(campaign lunch-deals)",
        "templates/meal.j2:4:14: 'merchants' is a list and has no attribute 'name' "
        "(loop over it with {% for ... in merchants %}) (campaign lunch-deals)",
    ]


def test_filters_tests_includes_and_imports_on_untaken_branches() -> None:
    src = (
        "{% import 'macros.j2' as mac %}{% from 'macros.j2' import shwo %}\n"
        "{% if 0 %}{{ 812|distanse }} {{ 1 is evn }}{% include 'nope.j2' %}{% endif %}\n"
        "{% if 0 %}{{ mac.show(1) }}{{ mac.shw(1) }}{{ merchants|map(attribute='nmae')|join }}"
        "{% endif %}"
    )
    macros = "{% macro show(x) %}{{ x }}{% endmacro %}"
    assert problems(src, **{"macros.j2": macros}) == [
        "templates/meal.j2:1:59: template 'macros.j2' has no macro or variable 'shwo' "
        "(did you mean 'show'?) (campaign lunch-deals)",
        "templates/meal.j2:2:18: unknown filter 'distanse' (did you mean 'distance'?) "
        "(campaign lunch-deals)",
        "templates/meal.j2:2:38: unknown test 'evn' (did you mean 'even'?) (campaign lunch-deals)",
        "templates/meal.j2:2:55: template 'nope.j2' not found (campaign lunch-deals)",
        "templates/meal.j2:3:35: 'mac' has no attribute 'shw' (did you mean 'show'?) "
        "(campaign lunch-deals)",
        "templates/meal.j2:3:71: the items have no attribute 'nmae' (did you mean 'name'?) "
        "(campaign lunch-deals)",
    ]


def test_an_included_template_is_checked_with_its_includer_s_context() -> None:
    part = "{% for m in merchants %}\n{{ m.nme }}{{ extra }}\n{% endfor %}"
    assert problems("{% set extra = 1 %}{% include 'part.j2' %}", **{"part.j2": part}) == [
        "templates/part.j2:2:6: 'm' has no attribute 'nme' (did you mean 'name'?) "
        "(campaign lunch-deals)"
    ]


def test_a_template_no_campaign_uses_is_checked_against_any_campaign_s_context() -> None:
    assert problems(OPS.templates["meal.j2"], **{"draft.j2": "{{ data.anything }}{{ grop }}"}) == [
        "templates/draft.j2:1:23: undefined variable 'grop' (did you mean 'group'?)"
    ]


def test_runtime_failures_are_still_found_by_the_sample_render() -> None:
    assert problems("{{ data.meal|weekday_zh }}") == [
        "templates/meal.j2:1:1: weekday_zh: expected mon..sun, got '午餐' (campaign lunch-deals)"
    ]


@given(
    st.sampled_from(
        [("group", "name"), ("group", "district"), ("campaign", "kind"), ("data", "meal")]
    ),
    st.sampled_from(
        [
            "{{ %s }}",
            "{%% if now.hour > 30 %%}{{ %s }}{%% endif %%}",
            "{%% for m in merchants %%}{%% if m.distance_m > 0 %%}{{ %s }}{%% endif %%}"
            "{%% endfor %%}",
        ]
    ),
    st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True),
)
def test_any_branch_any_misspelling(lookup: tuple[str, str], wrapper: str, attribute: str) -> None:
    """A real attribute passes in any branch; one the value does not have fails in any branch."""
    variable, real = lookup
    assert problems(wrapper % f"{variable}.{real}") == []
    known = {"id", "name", "city", "district", "tags", "kind", "meal", "radius_m"}
    if attribute in known or hasattr(dict, attribute):
        return
    found = problems(wrapper % f"{variable}.{attribute}")
    assert len(found) == 1
    assert f"'{variable}' has no attribute '{attribute}'" in found[0]


def test_the_sample_context_is_shaped_like_the_planner_s() -> None:
    """The shapes checked are the real ones: same keys for group, merchants and perks."""
    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    planner = CampaignPlanner(ops, QuietHours(start=time(23), end=time(6)))
    campaign = ops.campaigns["lunch-deals"]
    fire_at = datetime(2026, 12, 2, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    real = next(
        ctx
        for g in planner.targets(campaign)
        if (ctx := planner.context(campaign, g, fire_at)) is not None
    )
    real["members"] = [{"id": "u1", "name": "张三"}]
    assert context_shape(real) == context_shape(sample_context(campaign, ops, NOW))


def test_the_shipped_templates_and_campaigns_check_clean() -> None:
    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    assert check_templates(ops, NOW) == []
    assert unused_data_keys(ops, None, NOW) == []


def test_member_text_is_never_template_source() -> None:
    renderer = TemplateRenderer({"welcome.j2": "{% for m in members %}@{{ m.name }}{% endfor %}"})
    text = renderer.render("welcome.j2", {"members": [{"name": "{{ group.nmae }}{% if %}"}]})
    assert text == "@{{ group.nmae }}{% if %}"


# --- the warning for a `data` key nothing reads -----------------------------------------------


def test_a_data_key_nothing_reads_is_a_warning_at_that_key(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    (base / "config.yaml").write_text((ROOT / "config.yaml").read_text("utf-8"), "utf-8")
    meals = base / "campaigns" / "meals.yaml"
    text = meals.read_text("utf-8").replace(
        "{meal: 早餐, radius_m: 1500}", "{meal: 早餐, radius: 800}"
    )
    meals.write_text(text, "utf-8")
    line_no, line = next((i, t) for i, t in enumerate(text.splitlines(), 1) if "radius: 800" in t)
    found = [str(p) for p in check_all(base / "config.yaml", NOW) if "data key" in p.message]
    assert found == [
        f"{meals}:{line_no}:{line.index('radius') + 1}: warning: data key 'radius' is not used "
        "by kind meal nor template meal.j2 (did you mean 'radius_m'?)"
    ]


def test_keys_the_template_reads_on_any_branch_are_used(tmp_path: Path) -> None:
    ops = load_opsdata(ROOT / "campaigns", ROOT / "templates")
    daily = ops.campaigns["daily-checkin"]
    extra = {**daily.data, "note": "x", "perkk": "y", "radius_m": 500}
    ops = replace(
        ops,
        campaigns={**ops.campaigns, daily.id: daily.model_copy(update={"data": extra})},
        templates={
            **ops.templates,
            "daily.j2": ops.templates["daily.j2"] + "{% if 0 %}{{ data.note }}{% endif %}",
        },
    )
    messages = [p.message for p in unused_data_keys(ops, None, NOW)]
    assert messages == [
        "data key 'perkk' is not used by kind daily nor template daily.j2 (did you mean 'perk'?)",
        "data key 'radius_m' has no effect: campaign daily-checkin lists no merchants "
        "(set data.category to list some)",
    ]
    # A template that uses `data` as a whole may read any key: no warning can be sure.
    whole = {**ops.templates, "daily.j2": "{% for k, v in data.items() %}{{ k }}{% endfor %}"}
    assert unused_data_keys(replace(ops, templates=whole), None, NOW) == []


def test_templates_that_always_include_each_other_are_an_error_not_a_crash() -> None:
    loop_a = "{% include 'b.j2' %}"
    loop_b = "{{ group.name }}\n{% include 'meal.j2' %}"
    assert problems(loop_a, **{"b.j2": loop_b}) == [
        "templates/b.j2:2:12: templates include each other without end: "
        "meal.j2 -> b.j2 -> meal.j2 (campaign lunch-deals)"
    ]
    # Inside an {% if %} the recursion may end: not reported from the AST.
    bounded = "{% if now.hour > 30 %}{% include 'meal.j2' %}{% endif %}{{ group.name }}"
    assert problems(bounded) == []
