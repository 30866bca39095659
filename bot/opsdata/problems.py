"""Problems people can act on: ``PATH:LINE:COL: what was expected``.

This module also holds the machinery that gets those positions: YAML read with ruamel's
round-trip loader (which remembers where every key and value was), turned into plain Python
data, validated by a pydantic model, and each validation error mapped back to the key or value
it is about, with an English message saying what was expected.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from bot.opsdata import fastyaml
from bot.opsdata.fastyaml import NotFast, Positions
from bot.opsdata.yaml_aliases import BoundedYAML
from bot.opsdata.yaml_syntax import explain

Loc = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a file ops staff edit. ``line`` and ``col`` are 1-based.

    A problem with no position in a file (an environment variable, say) uses a pseudo path such
    as ``<env>`` and line and column 0.

    ``severity`` is ``"error"`` (the file is wrong: ``qunfu check`` exits 1 and a reload is
    rejected) or ``"warning"`` (the file is valid but will not do what its author surely meant;
    printed as ``PATH:LINE:COL: warning: message``, never rejects a reload).
    """

    path: Path
    line: int
    col: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"

    @property
    def is_warning(self) -> bool:
        """True for a warning, False for an error."""
        return self.severity == "warning"

    def relative_to(self, base: Path) -> Problem:
        """The same problem with its path shown relative to ``base`` when it lies under it."""
        try:
            rel = self.path.relative_to(base)
        except ValueError:
            return self
        return replace(self, path=rel)


class OpsDataError(Exception):
    """Raised with every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- YAML with positions --------------------------------------------------------------------


@dataclass(frozen=True)
class YamlDoc:
    """A YAML file as plain Python data, plus where each key and value was written.

    Positions are keyed by a path of keys and list indexes, such as ``("schedule", "at", 0)``;
    ``()`` is the document itself.
    """

    path: Path
    data: Any
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict, repr=False)
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict, repr=False)
    # Computes ``(keys, values)`` on first use, for a file read by the fast path: most files
    # never need a position, and a long directory's would cost more than reading it.
    locate: Callable[[], tuple[Positions, Positions]] | None = field(
        default=None, repr=False, compare=False
    )

    def _located(self) -> None:
        if self.locate is not None:
            keys, values = self.locate()
            self.keys.update(keys)
            self.values.update(values)
            object.__setattr__(self, "locate", None)  # once; frozen only to the outside

    def has_key(self, loc: Loc) -> bool:
        """True when the key (or list item) at ``loc`` was written in the file."""
        self._located()
        return loc in self.keys

    def key_pos(self, loc: Loc) -> tuple[int, int]:
        """Where the key of ``loc`` was written (for a list item: where the item starts)."""
        self._located()
        return self.keys.get(_known_prefix(self.keys, loc), (1, 1))

    def value_pos(self, loc: Loc) -> tuple[int, int]:
        """Where the value at ``loc`` was written; for a mapping or list value, its key."""
        self._located()
        known = _known_prefix(self.values, loc)
        if isinstance(self.get(known), (dict, list)):
            return self.key_pos(known)
        return self.values.get(known, (1, 1))

    def get(self, loc: Loc, default: Any = None) -> Any:
        """The plain value at ``loc``, or ``default`` when there is none."""
        cur = self.data
        for part in loc:
            try:
                cur = cur[part]
            except (KeyError, IndexError, TypeError):
                return default
        return cur

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A problem at the value (or key) of ``loc`` in this file."""
        line, col = self.key_pos(loc) if at_key else self.value_pos(loc)
        return Problem(self.path, line, col, message)

    def warning(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A warning at the value (or key) of ``loc`` in this file."""
        line, col = self.key_pos(loc) if at_key else self.value_pos(loc)
        return Problem(self.path, line, col, message, "warning")


def _known_prefix(positions: dict[Loc, tuple[int, int]], loc: Loc) -> Loc:
    for end in range(len(loc), 0, -1):
        if loc[:end] in positions:
            return loc[:end]
    return ()


def read_yaml(path: Path) -> YamlDoc:
    """Read one YAML file (YAML 1.2: ``11:30`` and ``on`` stay text, dates become ``date``).

    Raises :class:`OpsDataError` for a file that cannot be read or parsed, at the line to edit
    and in plain words (see :mod:`bot.opsdata.yaml_syntax`); aliases that expand past a limit
    are such an error too (see :mod:`bot.opsdata.yaml_aliases`). An empty file gives
    ``data=None``.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OpsDataError([Problem(path, 1, 1, "file not found")]) from None
    except UnicodeDecodeError as e:
        raise OpsDataError([Problem(path, 1, 1, f"not UTF-8 text ({e.reason})")]) from None
    except OSError as e:
        raise OpsDataError([Problem(path, 1, 1, f"cannot read the file: {e.strerror}")]) from None
    return parse_yaml(path, text)


def parse_yaml(path: Path, text: str) -> YamlDoc:
    """Parse ``text`` (read from ``path``) as :func:`read_yaml` does.

    The fast path (:mod:`bot.opsdata.fastyaml`) reads most files, with positions computed on
    first use; the rest, and every file it refuses, go through ruamel, which has the positions
    at once and says what is wrong with a file in plain words.
    """
    try:
        data = fastyaml.fast_load(text)
    except NotFast as e:
        return _parse_slow(path, text, e.line)
    return YamlDoc(path, data, locate=lambda: fastyaml.positions(text, data))


def _parse_slow(path: Path, text: str, failed_at: int | None = None) -> YamlDoc:
    """ruamel's reading (bounded aliases and depth); ``failed_at``: where the fast parser
    stopped, so a long file's error is looked for from a few items before it."""
    near = fastyaml.window(text, failed_at) if failed_at is not None else None
    if near is not None:
        try:
            BoundedYAML(len(text)).load(near)
        except YAMLError as e:
            line, col, message = explain(e, near)
            raise OpsDataError([Problem(path, line, col, message)]) from None
        # ruamel reads the rest without an error: the whole file decides, below.
    try:
        node = BoundedYAML(len(text)).load(text)
    except YAMLError as e:
        line, col, message = explain(e, text)
        raise OpsDataError([Problem(path, line, col, message)]) from None
    doc = YamlDoc(path, None)
    if isinstance(node, (CommentedMap, CommentedSeq)):
        doc.keys[()] = doc.values[()] = (node.lc.line + 1, node.lc.col + 1)
    data = _convert(node, (), doc, positioned=True)
    return replace(doc, data=data)


def _convert(node: Any, loc: Loc, doc: YamlDoc, positioned: bool) -> Any:
    """``node`` as plain data (see :func:`_plain`), recording in ``doc`` where each key, value
    and list item below it was written, in the same walk (the file may be large)."""
    if isinstance(node, dict):
        out = {}
        lc = node.lc if positioned and isinstance(node, CommentedMap) else None
        for key, value in node.items():
            plain_key = _plain(key)
            sub = loc + (plain_key,)
            known = False
            if lc is not None:
                try:
                    kl, kc = lc.key(key)
                    vl, vc = lc.value(key)
                except (KeyError, TypeError):  # merged (<<) keys carry no position of their own
                    pass
                else:
                    doc.keys[sub] = (kl + 1, kc + 1)
                    doc.values[sub] = (vl + 1, vc + 1)
                    known = True
            out[plain_key] = _convert(value, sub, doc, known)
        return out
    if isinstance(node, list):
        items = []
        lc = node.lc if positioned and isinstance(node, CommentedSeq) else None
        for i, item in enumerate(node):
            known = False
            if lc is not None:
                try:
                    il, ic = lc.item(i)
                except (KeyError, TypeError):
                    pass
                else:
                    doc.keys[loc + (i,)] = doc.values[loc + (i,)] = (il + 1, ic + 1)
                    known = True
            items.append(_convert(item, loc + (i,), doc, known))
        return items
    return _plain(node)


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain dict/list/str/int/float/bool/date/datetime/None."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return bool(node) if type(node).__name__ == "ScalarBoolean" else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        return datetime(
            node.year,
            node.month,
            node.day,
            node.hour,
            node.minute,
            node.second,
            node.microsecond,
            tzinfo=node.tzinfo,
        )
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    if hasattr(node, "value"):  # a tagged scalar such as `!secret x`
        return _plain(node.value)
    return node


# --- validation errors as problems ----------------------------------------------------------


def validate(doc: YamlDoc, model: type[M]) -> M:
    """Validate ``doc.data`` with ``model``.

    Raises :class:`OpsDataError` with one problem per validation error, each at the key or
    value it is about.
    """
    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        raise OpsDataError(problems_from_errors(doc, model, e.errors(include_url=False))) from None


def problems_from_errors(
    doc: YamlDoc, model: type[BaseModel], errors: Iterable[Any], *, base: Loc = ()
) -> list[Problem]:
    """Map pydantic errors (as from ``ValidationError.errors()``) to positions in ``doc``."""
    # Errors from the branches of a union (`holidays: list[str] | Literal["all"]`) come one per
    # branch; they are said as one problem: "expected a list or 'all'".
    entries: list[tuple[Loc, Any]] = []
    branches: dict[Loc, list[Any]] = {}
    for err in errors:
        loc, skipped = _resolve(doc, base, tuple(err["loc"]))
        if skipped and err["type"] not in ("missing", "extra_forbidden", "value_error"):
            if loc not in branches:
                branches[loc] = []
                entries.append((loc, branches[loc]))
            branches[loc].append(err)
        else:
            entries.append((loc, err))
    problems = []
    for loc, entry in entries:
        if isinstance(entry, list):
            phrases = list(dict.fromkeys(_expected(err) for err in entry))
            message = f"expected {' or '.join(phrases)}, got {_show(doc.get(loc))}"
            problems.append(doc.problem(loc, message))
        else:
            problems.append(_problem(doc, model, base, entry, loc))
    return problems


def _resolve(doc: YamlDoc, base: Loc, loc: Loc) -> tuple[Loc, bool]:
    """The longest path of real keys/indexes in ``loc``, and whether some parts were skipped."""
    path, cur, skipped = base, doc.get(base), False
    for part in loc:
        if (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        ):
            path, cur = path + (part,), cur[part]
        else:
            skipped = skipped or not (isinstance(part, int) or part == "[key]")
    return path, skipped


def _problem(doc: YamlDoc, model: type[BaseModel], base: Loc, err: Any, loc: Loc) -> Problem:
    kind = err["type"]
    raw = tuple(err["loc"])
    if kind == "missing":
        parent, _ = _resolve(doc, base, raw[:-1])
        return doc.problem(parent, f"missing key {raw[-1]!r}", at_key=True)
    if kind == "extra_forbidden":
        name = raw[-1]
        choices = field_names(model, raw[:-1])
        return doc.problem(loc, unknown_key_message(name, choices), at_key=True)
    message = _message(err, doc.get(loc))
    if kind in ("value_error", "assertion_error") and isinstance(doc.get(loc), dict):
        target = _mentioned_key(message, doc, loc)
        if target is not None:
            return doc.problem(target, message, at_key=True)
    return doc.problem(loc, message)


def unknown_key_message(name: Any, choices: Sequence[str]) -> str:
    """``unknown key 'shedule' (did you mean 'schedule'?)``, or the keys that are accepted."""
    guess = difflib.get_close_matches(str(name), choices, n=1)
    if guess:
        return f"unknown key {name!r} (did you mean {guess[0]!r}?)"
    if choices:
        return f"unknown key {name!r}; expected one of: {', '.join(choices)}"
    return f"unknown key {name!r}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    guess = difflib.get_close_matches(word, sorted(str(c) for c in choices), n=1)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


def _mentioned_key(message: str, doc: YamlDoc, loc: Loc) -> Loc | None:
    # A model-level rule ("a weekly campaign needs `schedule.days`") is best shown at the key
    # it names, when that key is in the file.
    for name in re.findall(r"`([A-Za-z_][\w.]*)`", message):
        parts = tuple(name.split("."))
        for end in range(len(parts), 0, -1):
            if doc.has_key(loc + parts[:end]):
                return loc + parts[:end]
    return None


_EXPECTED = {
    "string_type": "text (put it in quotes)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "date_type": "a date as YYYY-MM-DD",
    "date_parsing": "a date as YYYY-MM-DD",
    "date_from_datetime_parsing": "a date as YYYY-MM-DD",
    "date_from_datetime_inexact": "a date as YYYY-MM-DD (without a time)",
    "datetime_type": "a date and time",
    "datetime_parsing": "a date and time",
    "none_required": "nothing (null)",
}


def _expected(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return (
            "one of " + ", ".join(options)
            if len(options) > 1
            else repr(options[0])
            if options
            else str(ctx.get("expected"))
        )
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"a number {words} {ctx.get(key)}"
    if kind == "string_pattern_mismatch":
        return (
            "an id of letters, digits, '.', '_' and '-', starting with a letter or digit"
            if "A-Za-z0-9" in str(ctx.get("pattern"))
            else f"text matching {ctx.get('pattern')}"
        )
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} item(s)"
    return str(err.get("msg", kind)).lower()


def _message(err: Any, value: Any) -> str:
    kind = err["type"]
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("msg", ""))
        return re.sub(r"^(Value|Assertion) error, ", "", msg)
    got = err.get("input", value)
    message = f"expected {_expected(err)}, got {_show(got)}"
    if kind == "literal_error" and isinstance(got, str):
        options = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        message += did_you_mean(got, options)
    return message


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# --- what keys a model accepts --------------------------------------------------------------


def field_names(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys accepted by the mapping at ``loc`` under ``model`` (aliases as written)."""
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
    found = _model_in(tp)
    if found is None:
        return []
    return [f.alias or name for name, f in found.model_fields.items() if not f.exclude]


def _unwrap(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [u for arg in get_args(tp) for u in _unwrap(arg)]
    return [tp]


def _model_in(tp: Any) -> type[BaseModel] | None:
    for t in _unwrap(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _step(tp: Any, part: Any) -> Any:
    for t in _unwrap(tp):
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
            for name, f in t.model_fields.items():
                if part in (name, f.alias):
                    return f.annotation
        origin = get_origin(t)
        if origin in (list, tuple, set, frozenset) and isinstance(part, int):
            return get_args(t)[0] if get_args(t) else Any
        if origin is dict and get_args(t):
            return get_args(t)[1]
    return tp  # a union tag or similar: stay where we are
