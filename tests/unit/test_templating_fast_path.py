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


@given(m=contexts, name=st.sampled_from(NAMES))
def test_attribute_lookup_on_a_dict_matches_the_sandbox(m: dict[str, object], name: str) -> None:
    source = f"{{{{ m.{name} }}}}"
    renderer = TemplateRenderer({"t.j2": source})
    try:
        ours = renderer.render("t.j2", {"m": m})
    except TemplateRenderError as e:
        ours = "error: " + ("SecurityError" if "not allowed" in e.message else "UndefinedError")
    assert ours == _plain(source, {"m": m})


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
