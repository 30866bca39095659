"""YAML syntax errors in plain words, at the line the person has to edit.

ruamel's parser speaks of tokens (``expected <block end>, but found '<block mapping start>'``)
and often points after the mistake: at the end of the file for an unclosed quote, at the next
line for a missing ``:``. :func:`explain` recognises the common mistakes from the error and the
text around it and says what is wrong and what to do; anything else keeps the parser's words,
with its token names translated.
"""

from __future__ import annotations

import re

from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.opsdata.yaml_aliases import AliasExpansionError

_TOKENS = {
    "<block end>": "the end of the indented block",
    "<block mapping start>": "a new `key:` indented deeper",
    "<block sequence start>": "a new `- ` list",
    "<scalar>": "a value",
    "?": "a `key:`",
    "-": "a `- ` list item",
}


_FULL_WIDTH = {"：": ":", "，": ","}


def _full_width_message(char: str, line_text: str, col: int) -> str:
    """Plain words for a full-width ``：`` or ``，`` at ``col`` (1-based) of ``line_text``."""
    plain = _FULL_WIDTH[char]
    before = line_text[: col - 1].rstrip()
    word = re.search(r"[^\s{\[,]+$", before)
    after = f" after `{word.group(0)}`" if word else ""
    what = "colon" if plain == ":" else "comma"
    return (
        f"the {char!r}{after} is a full-width (Chinese) {what}; YAML needs the plain "
        f"{plain!r} followed by a space: switch the input method to English for it"
    )


def _spaces(n: int) -> str:
    return "no spaces" if n == 0 else "1 space" if n == 1 else f"{n} spaces"


def explain(error: YAMLError, text: str) -> tuple[int, int, str]:
    """``(line, col, message)`` for a YAML error in ``text``; line and column are 1-based."""
    if not isinstance(error, MarkedYAMLError) or error.problem_mark is None:
        return 1, 1, f"YAML syntax error: {error}"
    lines = text.splitlines() or [""]
    return _Explainer(error, text, lines).run()


class _Explainer:
    def __init__(self, error: MarkedYAMLError, text: str, lines: list[str]) -> None:
        self.e = error
        self.text = text
        self.lines = lines
        mark = error.problem_mark
        self.line, self.col = mark.line + 1, mark.column + 1
        self.index: int = mark.index
        self.problem = (error.problem or "").strip()
        self.context = (error.context or "").strip()
        ctx = error.context_mark
        self.ctx_line = ctx.line + 1 if ctx is not None else self.line
        self.ctx_col = ctx.column + 1 if ctx is not None else self.col

    def run(self) -> tuple[int, int, str]:
        p = self.problem
        if isinstance(self.e, AliasExpansionError):
            return self.at_problem(p + "; write the values out instead of repeating aliases")
        if p.startswith("maximum depth of data structure exceeded"):
            return self.at_problem("the data is nested too deeply here; no ops file needs this")
        if isinstance(self.e, DuplicateKeyError):
            return self.duplicate_key()
        if "\\t" in p:
            return self.at_problem(
                "a tab character: YAML indents with spaces only; replace the tab with spaces"
            )
        found = re.match(r"found character '(.+)' that cannot start any token", p)
        if found:
            ch = found.group(1)
            return self.at_problem(
                f'a value cannot start with {ch!r}; put the whole value in quotes, e.g. "{ch}..."'
            )
        if p.startswith("found undefined alias"):
            name = re.sub(r"^found undefined alias '(.*)'$", r"\1", p)
            return self.at_problem(
                f"`*{name}` reads as an alias, but no anchor `&{name}` is defined above it; "
                "a value that starts with `*` is text only in quotes"
            )
        if "could not find expected ':'" in p and "simple key" in self.context:
            return self.missing_colon()
        if p == "mapping values are not allowed here":
            return self.colon_or_indent()
        if p == "sequence entries are not allowed here":
            return self.at_problem(
                "a `- ` list item cannot follow a `key:` on the same line; put each item on "
                "its own line below the key, indented, or write the list as [a, b]"
            )
        if p.startswith("but found another document"):
            return self.at_problem(
                "a second document starts here (`---`); an ops file holds one: remove this "
                "line, or move what follows it into a file of its own"
            )
        if p.startswith("found unexpected end of stream") and "quoted scalar" in self.context:
            return self.at_context(
                "this quoted text is never closed: add the closing quote at the end of the value"
            )
        if p.startswith("found unknown escape character"):
            return self.at_problem(
                "a backslash inside double quotes starts an escape such as \\n; use single "
                "quotes for text with backslashes, or write \\\\ for one backslash"
            )
        flow = re.match(r"expected ',' or '([\]}])', but got", p)
        if flow:
            return self.unclosed_flow(flow.group(1))
        block = re.match(r"expected <block end>, but found '(.+)'$", p)
        if block:
            return self.block_end(block.group(1))
        return self.generic()

    # --- positions --------------------------------------------------------------------------

    def at_problem(self, message: str) -> tuple[int, int, str]:
        return self.line, self.col, message

    def at_context(self, message: str) -> tuple[int, int, str]:
        return self.ctx_line, self.ctx_col, message

    def text_of(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def start_of(self, line: int) -> int:
        """1-based column of the first non-space character of ``line``."""
        text = self.text_of(line)
        return len(text) - len(text.lstrip(" ")) + 1

    def is_content(self, line: int) -> bool:
        """True when ``line`` holds something other than blanks and a comment."""
        stripped = self.text_of(line).strip()
        return bool(stripped) and not stripped.startswith("#")

    def content_above(self, line: int) -> int | None:
        """The nearest line above ``line`` with something other than a comment on it."""
        return next((n for n in range(line - 1, 0, -1) if self.is_content(n)), None)

    def key_start(self, line: int) -> int:
        """1-based column where the key of ``line`` starts, after any ``- `` list markers."""
        found = re.match(r" *(?:-[ ]+)*", self.text_of(line))
        return (found.end() if found else 0) + 1

    def full_width(self, line: int, start: int, end: int | None = None) -> int | None:
        """1-based column of the first full-width ``：`` or ``，`` on ``line`` from column
        ``start`` (to ``end``), or None: a Chinese input method types them for ':' and ','."""
        text = self.text_of(line)
        stop = len(text) if end is None else end - 1
        return next((i + 1 for i in range(start - 1, stop) if text[i] in _FULL_WIDTH), None)

    def key_of(self, line: int) -> str:
        """The key written on ``line`` (without a leading ``- ``), or its first word."""
        stripped = self.text_of(line).strip().removeprefix("- ").lstrip()
        return re.split(r":(?:\s|$)|\s", stripped, maxsplit=1)[0] or stripped

    # --- mistakes ---------------------------------------------------------------------------

    def duplicate_key(self) -> tuple[int, int, str]:
        found = re.search(r'duplicate key "(.*?)" with value', self.problem)
        key = found.group(1) if found else "?"
        first = None
        for n in range(self.ctx_line, self.line):
            rest = self.text_of(n)[self.col - 1 :]
            if self.start_of(n) == self.col and re.match(
                rf"""["']?{re.escape(key)}["']?\s*:""", rest
            ):
                first = n
                break
        where = f" (first on line {first})" if first else ""
        return self.at_problem(
            f"the key {key!r} appears twice in this mapping{where}; keep only one of them"
        )

    def missing_colon(self, line: int | None = None) -> tuple[int, int, str]:
        """The key on ``line`` (default: where the parser's simple key began) has no ':'."""
        line = self.ctx_line if line is None else line
        written = self.text_of(line).strip()
        glued = re.match(r"([^\s:#]+):(\S.*)$", written.removeprefix("- "))
        col = self.start_of(line)
        wide = self.full_width(line, col)
        if wide is not None and self.text_of(line)[wide - 1] == "：":
            return line, wide, _full_width_message("：", self.text_of(line), wide)
        if glued:
            return (
                line,
                col,
                f"put a space after the ':' (`{glued.group(1)}: {glued.group(2)}`); "
                "without it YAML does not see a key",
            )
        return (
            line,
            col,
            "this line has no ':' after its key; write it as `key: value`, or, if it "
            "continues the text of the line above, put that text in quotes",
        )

    def colon_or_indent(self) -> tuple[int, int, str]:
        before = self.text_of(self.line)[: self.col - 1]
        first = re.search(r":(\s)", before)
        if first:
            key = before[: first.start()].strip().removeprefix("- ").strip()
            value_col = first.end() + 1
            value = self.text_of(self.line)[value_col - 1 :].split(" #")[0].strip()
            return (
                self.line,
                value_col,
                f"the value of `{key}` holds ': '; put the value in quotes: {key}: \"{value}\"",
            )
        return self.indented_too_far(self.line)

    def indented_too_far(self, line: int) -> tuple[int, int, str]:
        above = self.content_above(line)
        if above is None:
            return line, self.start_of(line), "this line is indented; start it at column 1"
        if self.start_of(line) <= self.start_of(above):
            # Not deeper at all: the line above is the one whose key has no ':'.
            return self.missing_colon(above)
        # Under `- id: b` the keys of that item line up with `id`, not with the `-`; another
        # `- ` item lines up with the `-`.
        is_item = re.match(r"-(?:\s|$)", self.text_of(line).lstrip(" ")) is not None
        key_col = self.start_of(above) if is_item else self.key_start(above)
        like = (
            f"line {above}"
            if key_col == self.start_of(above)
            else (f"`{self.key_of(above)}` on line {above}")
        )
        return (
            line,
            self.start_of(line),
            f"this line is indented more than line {above}, which already has a value; "
            f"indent it like {like} ({_spaces(key_col - 1)}), or, if it belongs under a key, "
            "end that key with ':'",
        )

    def lined_up_with_nothing(self, line: int) -> tuple[int, int, str]:
        have = self.start_of(line) - 1
        above = self.content_above(line)
        parent = next(
            (n for n in range(line - 1, 0, -1) if self.is_content(n) and self.start_of(n) <= have),
            None,
        )
        levels = []
        if above is not None:
            levels.append(f"line {above} has {_spaces(self.start_of(above) - 1)}")
        if parent is not None and parent != above:
            levels.append(f"line {parent} has {_spaces(self.start_of(parent) - 1)}")
        where = f" ({', '.join(levels)})" if levels else ""
        return (
            line,
            have + 1,
            f"this line is indented {_spaces(have)}, which lines it up with nothing above it"
            f"{where}; indent it like the lines it belongs with",
        )

    def block_end(self, token: str) -> tuple[int, int, str]:
        line = self.line
        have = self.start_of(line)
        if token in ("<block mapping start>", "<block sequence start>"):
            above = self.content_above(line)
            if above is not None and have > self.start_of(above):
                return self.indented_too_far(line)
            return self.lined_up_with_nothing(line)
        if token == "?" and "block collection" in self.context:
            item = self.text_of(self.ctx_line)[self.ctx_col - 1 :]
            key_col = self.ctx_col + len(item) - len(item[1:].lstrip(" "))
            return (
                line,
                have,
                f"`{self.key_of(line)}` is lined up with the `-` of the list item on line "
                f"{self.ctx_line}; indent it {_spaces(key_col - 1)}, like "
                f"`{self.key_of(self.ctx_line)}`, to add it to that item, or start a new item "
                "with `- `",
            )
        if token == "-":
            glued = next(
                (
                    n
                    for n in range(self.ctx_line, line)
                    if re.match(r"-[^\s-]", self.text_of(n).strip())
                ),
                None,
            )
            if glued is not None:
                return (
                    glued,
                    self.start_of(glued),
                    "put a space after the '-' to make this line a list item (`- `)",
                )
            return self.at_problem(
                f"a `- ` list item among `key: value` lines (the block from line "
                f"{self.ctx_line}); a block holds either keys or `- ` items: put the list under "
                "a key of its own, or make every line of the block a `- ` item"
            )
        if token in ("]", "}"):
            opening = "[" if token == "]" else "{"
            return self.at_problem(f"a '{token}' with no '{opening}' opening it; remove it")
        if token == "<scalar>":
            before = self.text[: self.index].rstrip(" \t")
            if before and before[-1] in "\"'" and "\n" not in self.text[len(before) : self.index]:
                return self.text_after_quote(before[-1], len(before) - 1)
            above = self.content_above(line)
            if above is not None and have < self.start_of(above):
                # The lines of a `|` or `>` text end where a line is indented less.
                return self.lined_up_with_nothing(line)
        return self.generic()

    def text_after_quote(self, quote: str, closing: int) -> tuple[int, int, str]:
        """Text after the quote at index ``closing`` of the file."""
        opening = self.text.rfind(quote, 0, closing)
        opened_on = self.text.count("\n", 0, opening) + 1 if opening >= 0 else self.line
        if opened_on < self.line:
            col = opening - (self.text.rfind("\n", 0, opening) + 1) + 1
            return (
                opened_on,
                col,
                f"the quoted text opened here is not closed on this line (it runs on to line "
                f"{self.line}); add the closing {quote} at the end of the value",
            )
        inner = (
            "to write ' inside '...', double it ('it''s'), or use double quotes"
            if quote == "'"
            else 'to write " inside "...", write \\", or use single quotes'
        )
        return self.at_problem(f"text follows the closing {quote}; {inner}")

    def unclosed_flow(self, closing: str) -> tuple[int, int, str]:
        opening = "[" if closing == "]" else "{"
        kind = "list" if closing == "]" else "mapping"
        if closing in self.text_of(self.ctx_line)[self.ctx_col :]:
            # `{lat: 1 lon: 2}`: the parser stops at the second ':'; the comma goes before `lon`.
            key = re.search(r"([^\s,{\[]+)\s*$", self.text_of(self.line)[: self.col - 1])
            wide = self.full_width(self.line, key.start() + 1, self.col) if key else None
            if wide is not None:
                return (
                    self.line,
                    wide,
                    _full_width_message(
                        self.text_of(self.line)[wide - 1], self.text_of(self.line), wide
                    ),
                )
            where = f" before `{key.group(1)}`" if key else ""
            return (
                self.line,
                key.start() + 1 if key else self.col,
                f"a ',' is missing{where} in this {opening}...{closing} {kind}",
            )
        return self.at_context(
            f"this {opening} {kind} is not closed: end it with '{closing}' on the same line "
            "(entries separated by ', ')"
        )

    def generic(self) -> tuple[int, int, str]:
        words = self.problem
        for token, plain in _TOKENS.items():
            words = words.replace(f"'{token}'", plain).replace(token, plain)
        message = f"YAML syntax error: {words}"
        if self.context and self.ctx_line != self.line:
            message += f" ({self.context.removeprefix('while ')}, from line {self.ctx_line})"
        return self.at_problem(message + "; check the indentation of this line and the one above")
