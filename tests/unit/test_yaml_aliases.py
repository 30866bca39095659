"""Alias expansion is bounded: a few hundred bytes cannot stand for millions of values."""

from __future__ import annotations

from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.cli import app
from bot.opsdata import OpsDataError, read_yaml
from bot.simulation import load_scenario

LAUGHS = Path(__file__).parent.parent / "fixtures" / "billion-laughs"


def laughs(width: int, depth: int) -> str:
    """Lists of ``width`` items, each level aliasing the one before: width**depth leaves."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def leaves(value: object) -> int:
    if isinstance(value, list):
        return sum(leaves(v) for v in value)
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    return 1


def test_a_scenario_whose_aliases_expand_to_millions_is_one_located_error() -> None:
    path = LAUGHS / "scenario.yaml"
    try:
        load_scenario(path)
    except OpsDataError as e:
        (p,) = e.problems
    else:
        raise AssertionError("the scenario was accepted")
    assert (p.path, p.line, p.col) == (path, 7, 36)
    assert "aliases expand past" in p.message


def test_qunfu_simulate_exits_1_with_the_position() -> None:
    path = LAUGHS / "scenario.yaml"
    result = CliRunner().invoke(app, ["simulate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7:36: aliases expand past" in result.output


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 12), depth=st.integers(1, 7))
def test_expansion_is_refused_past_the_limit_and_exact_below_it(
    tmp_path_factory: object, width: int, depth: int
) -> None:
    total = width**depth
    assume(total <= 30_000 or total >= 300_000)  # well clear of the limit on either side
    path = Path(str(tmp_path_factory.mktemp("laughs"))) / "x.yaml"  # type: ignore[attr-defined]
    path.write_text(laughs(width, depth), "utf-8")
    if total >= 300_000:
        try:
            read_yaml(path)
        except OpsDataError as e:
            assert "aliases expand past" in e.problems[0].message
            return
        raise AssertionError(f"{width}**{depth} values were accepted")
    doc = read_yaml(path)
    assert leaves(doc.data[f"l{depth - 1}"]) == total
