"""Templates: sandboxed, strict, and failing with the variable and line that went wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.opsdata import load_opsdata
from bot.templating import (
    TemplateRenderer,
    TemplateRenderError,
    check_templates,
    distance,
    sample_context,
    weekday_zh,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "opsdata"
NOW = datetime(2026, 12, 2, 11, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def render_error(templates: dict[str, str], name: str, context: dict) -> TemplateRenderError:
    with pytest.raises(TemplateRenderError) as info:
        TemplateRenderer(templates).render(name, context)
    return info.value


def test_renders_with_filters_and_strips_the_result() -> None:
    renderer = TemplateRenderer(
        {"t.j2": "\n{{ 'wed'|weekday_zh }} {{ 812|distance }}, {{ 1234|distance }}\n\n"}
    )
    assert renderer.render("t.j2", {}) == "周三 812米, 1.2公里"


def test_filters() -> None:
    assert distance(812) == "812米"
    assert distance(1234) == "1.2公里"
    assert weekday_zh("wed") == "周三"
    assert weekday_zh(NOW) == "周三"
    with pytest.raises(ValueError):
        weekday_zh("someday")


def test_undefined_variable_names_it_and_its_line() -> None:
    e = render_error(
        {"meal.j2": "午餐\n{% for m in merchnts %}{{ m.name }}{% endfor %}\n"},
        "meal.j2",
        {"merchants": []},
    )
    assert (e.name, e.line) == ("meal.j2", 2)
    assert e.message == "undefined variable 'merchnts' (did you mean 'merchants'?)"


def test_undefined_attribute_names_the_variable() -> None:
    e = render_error({"t.j2": "hello\n\n{{ group.nme }}"}, "t.j2", {"group": {"name": "G"}})
    assert e.line == 3
    assert e.message == "'group' has no attribute 'nme' (did you mean 'name'?)"


def test_error_in_an_included_template_is_reported_there() -> None:
    e = render_error({"a.j2": "{% include 'b.j2' %}", "b.j2": "x\n{{ foo }}"}, "a.j2", {})
    assert (e.name, e.line, e.message) == ("b.j2", 2, "undefined variable 'foo'")


def test_syntax_error_gives_the_line() -> None:
    e = render_error({"t.j2": "ok\n{% if %}\n"}, "t.j2", {})
    assert e.line == 2 and "syntax error" in e.message


def test_sandbox_refuses_internals() -> None:
    e = render_error({"t.j2": "{{ ''.__class__.__mro__ }}"}, "t.j2", {})
    assert "not allowed" in e.message


def test_member_nickname_is_text_not_template_source() -> None:
    renderer = TemplateRenderer({"welcome.j2": "欢迎 {{ members[0].name }}！"})
    text = renderer.render("welcome.j2", {"members": [{"name": "{{ 7*7 }}{% raw %}"}]})
    assert text == "欢迎 {{ 7*7 }}{% raw %}！"


def test_sample_context_has_the_contract_keys() -> None:
    ops = load_opsdata(FIXTURES / "campaigns", FIXTURES / "templates")
    ctx = sample_context(ops.campaigns["lunch-deals"], ops, NOW)
    assert ctx["group"]["id"] == "sz-nanshan-kjy"  # the first targeted group
    assert ctx["campaign"] == {"id": "lunch-deals", "name": "午餐附近美食", "kind": "meal"}
    assert ctx["data"]["meal"] == "午餐" and ctx["now"] == NOW
    assert {"name", "offer", "category", "distance_m", "address"} <= set(ctx["merchants"][0])
    assert {"id", "name"} <= set(ctx["members"][0])
    assert {"weekday", "time", "name", "kind", "text"} <= set(ctx["perks"][0])


def test_the_fixture_templates_check_clean() -> None:
    ops = load_opsdata(FIXTURES / "campaigns", FIXTURES / "templates")
    assert check_templates(ops, NOW) == []


def test_check_reports_template_file_line_and_campaign() -> None:
    ops = load_opsdata(FIXTURES / "campaigns", FIXTURES / "templates")
    templates = {
        **ops.templates,
        "meal.j2": "{{ group.name }}\n\n{{ merchnts }}\n",
        "unused.j2": "{% for %}\n",
    }
    problems = check_templates(replace(ops, templates=templates), NOW)
    assert [str(p.relative_to(FIXTURES)) for p in problems] == [
        "templates/meal.j2:3:4: undefined variable 'merchnts' (did you mean 'merchants'?) "
        "(campaign lunch-deals)",
        "templates/unused.j2:1:1: template syntax error: Expected an expression, "
        "got 'end of statement block'",
    ]
