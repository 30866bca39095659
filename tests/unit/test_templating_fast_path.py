"""The renderer's short way to ``x.name`` on dicts answers exactly what Jinja's sandbox answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.templating import TemplateRenderer, TemplateRenderError

# Keys that are dict methods (attribute wins), ordinary keys, and one the context lacks.
NAMES = ["name", "offer", "items", "get", "keys", "values", "copy", "missing", "__class__"]

values = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
contexts = st.dictionaries(st.sampled_from(NAMES[:-2]), values, max_size=6)


def _plain(source: str, context: dict[str, object]) -> str:
    env = SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(source).render(context).strip()
    except Exception as e:  # the kind of failure is what is compared
        return f"error: {type(e).__name__}"


def _ours(source: str, context: dict[str, object]) -> str:
    """The renderer's answer, a failure named as :func:`_plain` names the sandbox's."""
    try:
        return TemplateRenderer({"t.j2": source}).render("t.j2", context)
    except TemplateRenderError as e:
        return "error: " + ("SecurityError" if "not allowed" in e.message else "UndefinedError")


@given(m=contexts, name=st.sampled_from(NAMES))
def test_attribute_lookup_on_a_dict_matches_the_sandbox(m: dict[str, object], name: str) -> None:
    source = f"{{{{ m.{name} }}}}"
    assert _ours(source, {"m": m}) == _plain(source, {"m": m})


def test_a_misspelt_key_is_still_a_located_error() -> None:
    renderer = TemplateRenderer({"t.j2": "第一行\n{{ merchant.nmae }}"})
    with pytest.raises(TemplateRenderError) as e:
        renderer.render("t.j2", {"merchant": {"name": "面馆"}})
    assert e.value.line == 2
    assert e.value.message == "'merchant' has no attribute 'nmae' (did you mean 'name'?)"


def test_dunder_attributes_stay_forbidden() -> None:
    renderer = TemplateRenderer({"t.j2": "{{ m.__class__.__mro__ }}"})
    with pytest.raises(TemplateRenderError, match="not allowed|no attribute"):
        renderer.render("t.j2", {"m": {"__class__": "x"}})


LOOP_NAMES = [
    "index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0",
    "previtem", "nextitem", "cycle", "changed", "__class__", "_iterator", "missing",
]  # fmt: skip


@given(items=st.lists(values, max_size=4), name=st.sampled_from(LOOP_NAMES))
def test_loop_attributes_match_the_sandbox(items: list[object], name: str) -> None:
    source = f"{{% for x in xs %}}{{{{ loop.{name} }}}};{{% endfor %}}"
    assert _ours(source, {"xs": items}) == _plain(source, {"xs": items})


@given(m=contexts, key=st.sampled_from(NAMES[:-2]), method=st.sampled_from(["get", "keys"]))
def test_dict_methods_called_from_templates_match_the_sandbox(
    m: dict[str, object], key: str, method: str
) -> None:
    call = f"m.get({key!r}, 'none')" if method == "get" else "m.keys() | list"
    source = f"{{{{ {call} }}}}"
    assert TemplateRenderer({"t.j2": source}).render("t.j2", {"m": m}) == _plain(source, {"m": m})


@pytest.mark.parametrize(
    "source", ["{{ m.get.__self__ }}", "{{ m.items.__func__ }}", "{{ m.update({'a': 1}) }}x"]
)
def test_what_the_sandbox_refuses_on_dict_methods_stays_refused(source: str) -> None:
    assert _ours(source, {"m": {"a": 0}}) == _plain(source, {"m": {"a": 0}})


def test_a_render_error_names_the_template_line_through_the_short_render_path() -> None:
    renderer = TemplateRenderer({"t.j2": "一\n二\n{{ 1 // n }}"})
    with pytest.raises(TemplateRenderError) as e:
        renderer.render("t.j2", {"n": 0})
    assert (e.value.name, e.value.line) == ("t.j2", 3)
