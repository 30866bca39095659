"""The fast path's scan runs in pieces of whole lines and answers as one scan of the whole text.

:func:`bot.opsdata.fastyaml._needs_ruamel` scans a long file piece by piece so that a reload in
a worker thread gives the GIL back to the event loop between pieces; the pieces must find
exactly the matches one scan of the whole text finds.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.opsdata import fastyaml

# The characters the patterns care about, and a little plain text between them.
_ALPHABET = st.sampled_from(
    list("\n\n\n  \t\r#&*!|>@`<-?:.%[{,\"'\\0123ax") + ["2026-", "x3", "u003", "---", "- - "]
)
texts = st.lists(_ALPHABET, max_size=120).map("".join)


def _matches(pattern: re.Pattern[str], text: str, size: int | None) -> list[tuple[int, int]]:
    """Spans of ``pattern`` in ``text``: scanned whole (``size`` None) or piece by piece."""
    pieces = [(0, len(text))] if size is None else fastyaml._pieces(text, size)
    return [m.span() for start, end in pieces for m in pattern.finditer(text, start, end)]


@settings(max_examples=400, deadline=None)
@given(text=texts, size=st.integers(1, 40))
def test_pieces_find_the_matches_of_a_whole_text_scan(text: str, size: int) -> None:
    for pattern in (fastyaml._SLOW_PATH, fastyaml._INDENT):
        assert _matches(pattern, text, size) == _matches(pattern, text, None)
    assert fastyaml._needs_ruamel(text, size) == fastyaml._needs_ruamel(text, len(text) + 1)


@settings(max_examples=200, deadline=None)
@given(text=texts, size=st.integers(1, 40))
def test_pieces_cover_the_text_in_order_and_end_at_line_breaks(text: str, size: int) -> None:
    pieces = list(fastyaml._pieces(text, size))
    assert [s for s, _ in pieces] == [0, *(e for _, e in pieces)][: len(pieces)]
    assert (pieces[-1][1] if pieces else 0) == len(text)
    assert all(s < e and (e == len(text) or text[e - 1] == "\n") for s, e in pieces)


def test_a_quote_ending_a_piece_keeps_the_lines_after_it() -> None:
    """A quoted date may start on the next line ("\\n  2026-..."): the piece runs on past it."""
    text = 'a: ["\n\n  2026-12-01", 1]\n' + "b: 1\n" * 50
    pieces = list(fastyaml._pieces(text, 4))
    assert pieces[0] == (0, text.index("b:"))
    assert fastyaml._needs_ruamel(text, 4)


def test_a_long_text_is_scanned_in_several_pieces() -> None:
    text = "groups:\n" + "  - {id: g1, name: 福利群}\n" * 20_000
    pieces = list(fastyaml._pieces(text, fastyaml.SCAN_SLICE))
    assert len(pieces) > 3
    assert not fastyaml._needs_ruamel(text)


@pytest.mark.parametrize(
    "text",
    [
        "# ops file\n!!set\n? a\n",  # a tag at column 0, after a comment line
        "a: 1  # note\n&x b: 2\n",  # an anchor at column 0, after a comment
    ],
)
def test_a_tag_or_alias_at_column_0_after_a_comment_goes_to_ruamel(text: str) -> None:
    """The scan used to start the match on the line break, so the comment on the line before
    hid it, and the Rust parser read ``!!set`` into a Python set."""
    with pytest.raises(fastyaml.NotFast):
        fastyaml.fast_load(text)
