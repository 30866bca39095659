"""YAML syntax errors in plain words, at the line to edit.

Each file in tests/fixtures/yaml-syntax holds one common mistake; its first line says where the
problem must be reported and words the message must contain: ``# expect: LINE:COL words``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.opsdata import OpsDataError, read_yaml

CASES = sorted((Path(__file__).parent.parent / "fixtures" / "yaml-syntax").glob("*.yaml"))


def expectation(path: Path) -> tuple[int, int, str]:
    first = path.read_text("utf-8").splitlines()[0]
    found = re.fullmatch(r"# expect: (\d+):(\d+) (.+)", first)
    assert found, f"{path.name}: the first line must be '# expect: LINE:COL words'"
    return int(found.group(1)), int(found.group(2)), found.group(3)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_common_mistake_is_explained_at_the_line_to_edit(path: Path) -> None:
    line, col, words = expectation(path)
    with pytest.raises(OpsDataError) as info:
        read_yaml(path)
    (p,) = info.value.problems
    assert (p.line, p.col) == (line, col), p.message
    assert words in p.message
    # The parser's own jargon stays out of the message.
    assert "<block" not in p.message and "expected <" not in p.message
