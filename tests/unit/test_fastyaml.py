"""The fast YAML path reads what the ruamel path reads: same plain data, same positions.

``parse_yaml`` reads with the Rust parser when it can (positions later, from libyaml events);
``_parse_slow`` is ruamel's reading, the reference. Files read by the fast path must give the
same data, the same key and value positions, and the same errors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.opsdata import fastyaml
from bot.opsdata.problems import OpsDataError, YamlDoc, _parse_slow, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "campaigns").glob("*.yaml")) + [ROOT / "config.yaml"]


def _read_both(text: str, path: Path = Path("x.yaml")) -> tuple[Any, Any]:
    """(fast result, ruamel result), each a YamlDoc or the problems it raised."""

    def attempt(read: Any) -> Any:
        try:
            return read(path, text)
        except OpsDataError as e:
            return [str(p) for p in e.problems]

    return attempt(parse_yaml), attempt(_parse_slow)


def _same(a: Any, b: Any) -> bool:
    """Equal plain data, types included (True is not 1; a date is not a str); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _positions(doc: YamlDoc) -> tuple[dict[Any, Any], dict[Any, Any]]:
    doc.has_key(())  # computes them, for a fast-path document
    return doc.keys, doc.values


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_files_read_the_same_with_the_same_positions(path: Path) -> None:
    text = path.read_text("utf-8-sig")
    fast, slow = _read_both(text, path)
    assert isinstance(fast, YamlDoc) and isinstance(slow, YamlDoc)
    assert fast.locate is not None, "the sample files are read by the fast path"
    assert _same(fast.data, slow.data)
    assert _positions(fast) == _positions(slow)


def test_a_long_generated_directory_has_the_same_positions() -> None:
    lines = ["groups:"]
    for i in range(300):
        lines += [
            f"  - id: g{i}   # 第{i}群",
            f"    name: '群 {i}'",
            "    location: {lat: 22.5, lon: 113.9}",
            "    tags: [office, 'a b']",
            "",
        ]
    fast, slow = _read_both("\n".join(lines) + "\n")
    assert isinstance(fast, YamlDoc) and fast.locate is not None
    assert _same(fast.data, slow.data)
    assert _positions(fast) == _positions(slow)


# Scalars chosen where YAML 1.1 and 1.2, or two parsers, tend to differ.
# fmt: off
TRICKY = [
    "11:30", "1:20:30", "on", "off", "yes", "no", "y", "n", "True", "TRUE", "false", "null",
    "Null", "~", "", "0", "-0", "00", "017", "09", "0o17", "0x1F", "0b101", "1_000", "+1",
    "1e3", "1.0e+3", "-.5", ".5", "12.", ".inf", "-.INF", ".nan", "2026-12-12", "2026-1-5",
    "2026-12-12 10:00:00", "2026-12-12T10:00:00+08:00", "2026-12-12t10:00:00.5Z", "=", "<<",
    "a b", "深圳", "满30减10", "a#b", "a # comment", "@x", "`x", "%x", "x: y", "- x", "[x]",
    "{x: 1}", "'q'", '"q"', "a\\b", "it's", "*x", "&x", "!x", "? x", "|", ">", "1.5.3",
]
# fmt: on


def _forms(raw: str) -> list[str]:
    escaped = raw.replace("\\", "\\\\").replace('"', '\\"')
    return [raw, f"'{raw.replace(chr(39), chr(39) * 2)}'", f'"{escaped}"', f"[{raw}]"]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TRICKY), st.integers(0, 3)), min_size=1, max_size=6))
def test_tricky_scalars_read_the_same(values: list[tuple[str, int]]) -> None:
    text = "".join(f"k{i}: {_forms(raw)[form]}\n" for i, (raw, form) in enumerate(values))
    fast, slow = _read_both(text)
    if isinstance(slow, YamlDoc):
        assert isinstance(fast, YamlDoc), text
        assert _same(fast.data, slow.data), text
    else:
        assert fast == slow, text  # the same located, plain-words error


def test_quoted_dates_stay_text() -> None:
    # yaml_rs alone reads "2026-12-01" as a date; quoted, it is text in YAML.
    doc = parse_yaml(Path("x.yaml"), 'a: "2026-12-01"\nb: 2026-12-01\n')
    assert doc.data == {"a": "2026-12-01", "b": doc.data["b"]}
    assert type(doc.data["b"]).__name__ == "date"


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2]\nb: *x\n",
        "base: &b {k: 1}\nd:\n  <<: *b\n",
        "a: !secret x\n",
        "---\na: 1\n",
        "- - - x\n",
        "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(250)),
        'a: {"x":&x [1, 2], "y":*x}\n',
    ],
    ids=["alias", "merge", "tag", "document-marker", "compact-nesting", "deep", "json-key-alias"],
)
def test_what_needs_a_bound_or_reads_differently_goes_to_ruamel(text: str) -> None:
    with pytest.raises(fastyaml.NotFast):
        fastyaml.fast_load(text)


def test_deep_block_nesting_is_a_plain_error_not_a_crash() -> None:
    # The Rust parser has no depth bound for block nesting (it crashed on 20,000 levels).
    text = "".join(" " * i + "- \n" for i in range(5000))
    with pytest.raises(OpsDataError, match="nested too deeply"):
        parse_yaml(Path("deep.yaml"), text)


# --- a long directory file with a problem ---------------------------------------------------


def _directory(n: int) -> str:
    return "groups:\n" + "".join(
        f"  - id: g{i}\n    name: 群{i}\n    city: 深圳\n    location: {{lat: 22.5, lon: 113.9}}\n"
        for i in range(n)
    )


def test_a_broken_line_in_a_long_directory_is_explained_from_near_it(tmp_path: Path) -> None:
    lines = _directory(2000).splitlines(keepends=True)
    lines[4002] = lines[4002].replace("name: ", 'name: "')  # item 1000: a quote never closed
    text = "".join(lines)
    assert fastyaml.window(text, 4004) is not None  # read from a few items before, not whole
    fast, slow = _read_both(text)
    assert (
        fast
        == slow
        == [
            "x.yaml:4003:11: this quoted text is never closed: add the closing quote at the end of "
            "the value"
        ]
    )


def test_a_window_is_not_used_when_a_quote_runs_over_items() -> None:
    text = _directory(2000).replace("name: 群10\n", 'name: "群10\n', 1)
    assert fastyaml.window(text, 1800) is None


def test_a_schema_error_deep_in_a_long_file_is_located_like_ruamel_does() -> None:
    text = _directory(2000).replace("lat: 22.5, lon: 113.9}\n", "lat: north, lon: 113.9}\n", 1501)
    fast, slow = _read_both(text)
    assert isinstance(fast, YamlDoc) and isinstance(slow, YamlDoc)
    loc = ("groups", 1500, "location", "lat")
    assert fast.value_pos(loc) == slow.value_pos(loc) == (6005, 21)


def test_a_broken_long_directory_keeps_the_last_good_version_live(tmp_path: Path) -> None:
    from bot.opsdata.loader import OpsDataSource

    campaigns, templates = tmp_path / "campaigns", tmp_path / "templates"
    campaigns.mkdir()
    templates.mkdir()
    groups = campaigns / "groups.yaml"
    groups.write_text(_directory(2000), encoding="utf-8")
    source = OpsDataSource(campaigns, templates)
    good, problems = source.reload()
    assert problems == [] and good is not None and len(good.groups) == 2000
    groups.write_text(_directory(2000).replace("name: 群1500\n", "name: 群1500\n  bad\n"), "utf-8")
    data, problems = source.reload()
    assert data is None and source.current is good
    assert [(p.line, p.col) for p in problems] == [(6004, 3)]
