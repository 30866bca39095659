"""Fast reading of ops YAML: a Rust parser for the data, positions only when a file has a problem.

ruamel's round-trip reader (see :mod:`bot.opsdata.problems`) remembers where every key and
value was written, but it is pure Python: a 20,000-group directory takes it minutes. Here the
data comes from ``yaml_rs`` (a YAML 1.2 parser written in Rust: ``11:30`` and ``on`` stay text,
dates become ``date``, duplicate keys are an error), which reads the same files dozens of times
faster, and positions are computed only when a message needs one, from libyaml's events
(PyYAML's C parser) walked beside the data.

A file goes to the ruamel path instead when it uses what the two readers could read
differently or what needs a bound: anchors and aliases (the expansion bound of
:mod:`bot.opsdata.yaml_aliases`), merge keys, ``!`` tags, several documents, and nesting deep
enough to need the depth bound. A file the fast parser refuses is read again by ruamel, which
says what is wrong in plain words (:mod:`bot.opsdata.yaml_syntax`); for a long file that read
starts a few list items before the line the fast parser named, so a broken line in a long
directory is reported about as fast as a good file is read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import yaml
import yaml_rs

from bot.opsdata.yaml_aliases import ALIAS_EXPANSION_LIMIT

Loc = tuple[Any, ...]
Positions = dict[Loc, tuple[int, int]]

# What only the ruamel path reads (see the module docstring). A false alarm (a `*` or `>` in
# plain text after a space) only costs speed.
_SLOW_PATH = re.compile(
    # An anchor, alias or tag, after a blank or a bracket: not after the line break itself (a
    # match starting on the line before, in a comment there, would be skipped), which `^` covers.
    r"(?:^|[ \t\r\x85\u2028\u2029\[{,])[&*!]"
    # ... or right after the ':' of a quoted key in braces (`{"a":&x [1], "b":*x}`).
    r"|[\"']:[&*!]"
    # A value starting with `|` or `>` (a block scalar: the readers differ on an empty one), or
    # with `@` or a backquote, which cannot start a plain value (ruamel says so).
    r"|(?:^|[\[{,]|[-?:][ \t])[ \t]*[|>@`]"
    r"|<<"  # a merge key
    r"|^(?:---|\.\.\.|%)"  # document markers and directives
    r"|^[ \t]*(?:[-?][ \t]+){2,}"  # `- - x`: nesting on one line, unbounded by indentation
    # Quoted text that looks like a date: yaml_rs reads "2026-12-01" as a date, not as text.
    r"|[\"'][ \t\n]*\d{4}-|\\(?:x3|u003|U0000003)\d",
    re.MULTILINE,
)
# Deeper indentation than this goes to ruamel, whose depth bound (yaml_aliases.MAX_DEPTH) gives
# a plain error; the Rust parser has no such bound for block nesting.
_MAX_INDENT = 200
_INDENT = re.compile(rf"^[ \t]{{{_MAX_INDENT + 1},}}\S", re.MULTILINE)
# The scan for the above runs in pieces of about this many characters (~1-2 ms each).
SCAN_SLICE = 16 * 1024
_ERROR_AT = re.compile(r"line (\d+), column (\d+)")
# A line's start up to a `#` that begins a comment (no quote before it on that line).
_IN_COMMENT = re.compile(r"[^\"'\n]*?(?:^|\s)#", re.MULTILINE)


def _needs_ruamel(text: str, slice_chars: int = SCAN_SLICE) -> bool:
    """True when ``text`` uses something only the ruamel path reads (comments do not count).

    The text is scanned in pieces of whole lines (:func:`_pieces`), one regex call each, with
    the GIL offered to other threads between them: one call over a 10 MB directory holds it
    for most of a second, which a reload in a worker thread must not do to the event loop.
    The answer is the one a single scan of the whole text gives.
    """
    for start, end in _pieces(text, slice_chars):
        if _INDENT.search(text, start, end):
            return True
        for found in _SLOW_PATH.finditer(text, start, end):
            line_start = text.rfind("\n", 0, found.start()) + 1
            if not _IN_COMMENT.match(text, line_start, found.start() + 1):
                return True
        time.sleep(0)  # lets a waiting thread (the event loop) take the GIL now
    return False


def _pieces(text: str, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of consecutive pieces of ``text`` of about ``size`` characters, each
    ending at a line break, such that no match of the scans runs over a piece's end.

    Every pattern but one stays on its line; the quoted-date one runs over line breaks only
    through the blanks after a quote, so a piece never ends where its last character other
    than a blank is a quote: it takes more lines until one ends otherwise.
    """
    n = len(text)
    start = 0
    while start < n:
        end = _line_end(text, start + size)
        low, quoted = start, False
        while end < n:
            k = end - 1
            while k >= low and text[k] in " \t\n":
                k -= 1
            if k >= low:  # else the lines just taken are blank: the last one that is not decides
                quoted = text[k] in "\"'"
            if not quoted:
                break
            low, end = end, _line_end(text, end)
        yield start, end
        start = end


def _line_end(text: str, at: int) -> int:
    """The index just past the line break at or after ``at`` (or the end of ``text``)."""
    if at >= len(text):
        return len(text)
    brk = text.find("\n", at)
    return len(text) if brk < 0 else brk + 1


class NotFast(Exception):
    """The fast path does not read this text; ``line`` is where the fast parser failed, if so."""

    def __init__(self, line: int | None = None) -> None:
        super().__init__(line)
        self.line = line


def fast_load(text: str) -> Any:
    """``text`` as plain data (dict, list, str, int, float, bool, date, datetime, None).

    Raises :class:`NotFast` when the text must be read by the ruamel path instead (with the
    line the fast parser stopped at, when it refused the text).
    """
    if _needs_ruamel(text):
        raise NotFast()
    # Should an alias get past the scan, the Rust parser's own bound holds it to ours.
    bound = max(ALIAS_EXPANSION_LIMIT, len(text))
    try:
        return yaml_rs.loads(text, alias_limits=yaml_rs.AliasLimits(bound))
    except yaml_rs.YAMLDecodeError as e:
        found = _ERROR_AT.search(str(e))
        raise NotFast(int(found.group(1)) if found else None) from None


def positions(text: str, data: Any) -> tuple[Positions, Positions]:
    """Where each key and value of ``data`` (read from ``text`` by :func:`fast_load`) was
    written, as 1-based ``(line, col)`` keyed like :class:`~bot.opsdata.problems.YamlDoc`.

    libyaml's events are walked beside the data: the n-th key event of a mapping is the n-th
    key of its dict (keys are unique), so no scalar has to be resolved again.
    """
    keys: Positions = {}
    values: Positions = {}
    events = yaml.parse(text, Loader=yaml.CBaseLoader)
    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            first = next(events)
            if isinstance(first, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                keys[()] = values[()] = _at(first)
            _walk(first, events, data, (), keys, values)
            break
    return keys, values


def _at(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def _walk(event: Any, events: Any, data: Any, loc: Loc, keys: Positions, values: Positions) -> None:
    """Record the positions below the node that starts with ``event`` (its data: ``data``)."""
    if isinstance(event, yaml.MappingStartEvent):
        names = list(data) if isinstance(data, dict) else []
        i = 0
        while True:
            key_event = next(events)
            if isinstance(key_event, yaml.MappingEndEvent):
                return
            _skip(key_event, events)
            value_event = next(events)
            if i < len(names):
                sub = loc + (names[i],)
                keys[sub] = _at(key_event)
                values[sub] = _at(value_event)
                _walk(value_event, events, data[names[i]], sub, keys, values)
            else:
                _skip(value_event, events)
            i += 1
    if isinstance(event, yaml.SequenceStartEvent):
        items = data if isinstance(data, list) else []
        i = 0
        while True:
            item_event = next(events)
            if isinstance(item_event, yaml.SequenceEndEvent):
                return
            if i < len(items):
                keys[loc + (i,)] = values[loc + (i,)] = _at(item_event)
                _walk(item_event, events, items[i], loc + (i,), keys, values)
            else:
                _skip(item_event, events)
            i += 1


def _skip(event: Any, events: Any) -> None:
    """Consume the rest of the node that starts with ``event`` (a complex key, say)."""
    depth = int(isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)))
    while depth:
        e = next(events)
        if isinstance(e, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
        elif isinstance(e, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


# --- reading a long file with a syntax error from near the error ------------------------------

# Below this size ruamel reads the whole file; above it, from a few items before the error.
WINDOW_FROM_BYTES = 64 * 1024
_ITEMS_BEFORE = 3


def window(text: str, line: int) -> str | None:
    """``text`` with the whole list items well before ``line`` blanked out (line numbers and
    columns unchanged), so ruamel reaches the error quickly; None when that cannot be done
    safely.

    Only the items of a top-level ``section:`` list are blanked, and only when the text before
    the first kept item reads on its own as that many whole items (a quoted value running over
    item boundaries, say, would not), so what ruamel meets from there on is what it would have
    met reading the whole file.
    """
    lines = text.splitlines(keepends=True)
    if len(text) < WINDOW_FROM_BYTES or not 1 < line <= len(lines):
        return None
    # The top-level key holding the line, and the indentation of its list items.
    head = next(
        (n for n in range(line - 2, -1, -1) if _content(lines[n]) and lines[n][0] not in " \t"),
        None,
    )
    if head is None or lines[head].startswith("-"):
        return None
    first = next((n for n in range(head + 1, line - 1) if _content(lines[n])), None)
    if first is None or not lines[first].lstrip().startswith("- "):
        return None
    marker = lines[first][: len(lines[first]) - len(lines[first].lstrip())] + "- "
    starts = [n for n in range(first, line - 1) if lines[n].startswith(marker)]
    if len(starts) <= _ITEMS_BEFORE:
        return None
    keep_from = starts[-_ITEMS_BEFORE - 1]
    blanked = starts.index(keep_from)
    prefix = "".join(lines[:keep_from])
    try:
        before = yaml_rs.loads(prefix)
    except yaml_rs.YAMLDecodeError:
        return None
    section = lines[head].split(":", 1)[0].strip().strip("\"'")
    items = before.get(section) if isinstance(before, dict) else None
    if not isinstance(items, list) or len(items) != blanked:
        return None
    return "".join(lines[:first]) + "\n" * (keep_from - first) + "".join(lines[keep_from:])


def _content(line: str) -> bool:
    """True for a line with something other than blanks and a comment."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")
