"""Long tables as CSV: ``groups*.csv``, ``merchants*.csv`` and ``managers*.csv``.

A bank keeps its directory of groups and merchants in a spreadsheet; a CSV export of it can sit
in the campaigns folder beside the YAML files (DESIGN.md: "Long tables may also be CSV").

* **Which table**: the file name says it. ``groups.csv``, ``groups-shenzhen.csv``,
  ``merchants_2026.csv``: the name starts with the section (``groups``, ``merchants``,
  ``managers``), alone or followed by ``-``, ``_``, ``.`` or a space and anything.
* **Columns**: the first row names them, with the YAML keys of one item (``id``, ``name``,
  ``city``...). A nested mapping is written ``key.sub`` (``location.lat``); for ``location``
  the short ``lat``, ``lon`` and ``crs`` are accepted too. A list (``tags``, ``days``) is one
  cell with its items separated by ``|`` (``office|residential``). Column order is free.
* **Cells**: surrounding blanks are ignored; an empty cell means the key is not given (its
  default applies, or a required key is reported missing). Text is handed to the same pydantic
  models as YAML, so ``500`` becomes a number and ``true`` a boolean where the model says so.
  Blank lines are skipped. Comma-separated, ``"`` quotes (the dialect spreadsheets export),
  UTF-8 with or without a byte-order mark.

Each row becomes an item of ``{section: [...]}`` in a :class:`~bot.opsdata.problems.YamlDoc`, so
validation, duplicate ids and cross-file references work exactly as for YAML. Positions are
``PATH:LINE:COL``: LINE is the row's line in the file, COL the 1-based character column where
the cell starts (a quoted cell: its opening quote; an item of a list cell: where that item
starts). They are computed only for the rows a message is about, from the row's raw text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from bot.opsdata.models import FILE_KINDS
from bot.opsdata.problems import Loc, Problem, YamlDoc, did_you_mean, unknown_key_message

CSV_SECTIONS = ("groups", "merchants", "managers")
LIST_SEPARATOR = "|"
# Short column names for a key of a nested mapping (a spreadsheet has lat and lon columns).
_SHORT = {"lat": ("location", "lat"), "lon": ("location", "lon"), "crs": ("location", "crs")}
_NAME_AFTER_SECTION = re.compile(r"[-_. ]")
_LINE_END = re.compile(r"\r\n|\r|\n")


def csv_section(path: Path) -> str | None:
    """The section a CSV file holds, from its name (``groups-sz.csv`` -> ``groups``), or None."""
    stem = path.stem.lower()
    for section in CSV_SECTIONS:
        if stem == section or (
            stem.startswith(section) and _NAME_AFTER_SECTION.match(stem, len(section))
        ):
            return section
    return None


@dataclass
class CsvTable:
    """One CSV file read: its rows as a document (None when the header makes the rows
    unreadable), the problems of the file's shape, and every id written in it."""

    section: str | None
    doc: YamlDoc | None
    problems: list[Problem] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Column:
    index: int
    loc: tuple[str, ...]  # ("id",) or ("location", "lat")
    is_list: bool


def read_table(path: Path) -> CsvTable:
    """Read one CSV file of the campaigns folder (see the module docstring for the format)."""
    section = csv_section(path)
    if section is None:
        names = ", ".join(f"{s}….csv" for s in CSV_SECTIONS)
        message = (
            f"cannot tell which table this CSV file holds: its name must start with one of "
            f"{', '.join(CSV_SECTIONS)} (such as {names}, or groups-shenzhen.csv)"
        )
        return CsvTable(None, None, [Problem(path, 1, 1, message)])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        message = f"not UTF-8 text ({e.reason}); save the sheet as “CSV UTF-8”"
        return CsvTable(section, None, [Problem(path, 1, 1, message)])
    except OSError as e:
        return CsvTable(section, None, [Problem(path, 1, 1, f"cannot read the file: {e.strerror}")])
    return _parse(path, section, text)


def _parse(path: Path, section: str, text: str) -> CsvTable:
    table = CsvTable(section, None)
    rows = _rows(path, text, table.problems)
    header = next(rows, None)
    if header is None:
        return table  # an empty file holds nothing, like an empty YAML file
    header_line, header_cells = header
    positions = _RowPositions(section, text)
    positions.add_row(header_line, header_cells)
    columns, usable = _columns(path, section, header_line, header_cells, positions, table.problems)
    id_column = next((c.index for c in columns if c.loc == ("id",)), None)
    items: list[dict[str, Any]] = []
    for line, cells in rows:
        if id_column is not None and id_column < len(cells) and cells[id_column].strip():
            table.ids.add(cells[id_column].strip())
        if len(cells) != len(header_cells):
            at = positions.cell_start(line, cells, min(len(cells), len(header_cells)))
            table.problems.append(
                Problem(
                    path,
                    *at,
                    f"expected {len(header_cells)} cells (one per header column), got "
                    f"{len(cells)}: a comma too many or too few?",
                )
            )
            continue
        positions.add_row(line, cells, len(items), columns)
        items.append(_item(cells, columns))
    if usable:
        table.doc = YamlDoc(path, {section: items}, keys=positions, values=positions)
    return table


def _rows(path: Path, text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for each non-blank row; a row the csv module refuses is a problem."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    while True:
        start = line
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            end = reader.line_num
            problems.append(Problem(path, start, *_refused(text, start, str(e))))
            line = end + 1
            continue
        line = reader.line_num + 1
        if any(c.strip() for c in cells):
            yield start, cells


def _refused(text: str, line: int, reason: str) -> tuple[int, str]:
    """The column and plain words for a row the csv module refuses (``reason``: its error)."""
    begin = sum(len(x) for x in text.splitlines(keepends=True)[: line - 1])
    end = text.find("\n", begin)
    quote = text.find('"', begin, end if end >= 0 else len(text))
    col = quote - begin + 1 if quote >= 0 else 1
    if "unexpected end of data" in reason:
        return col, 'a quoted cell is never closed: the `"` here opens it and no `"` ends it'
    if "expected after" in reason:
        return col, (
            'a quoted cell must end with `"` right before the comma (a `"` inside a quoted '
            'cell is written `""`)'
        )
    return col, f"cannot read this row: {reason}"


def _accepted(section: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Column name -> (key path, is a list), from the item model of ``section``."""
    item = get_args(FILE_KINDS[section].model_fields[section].annotation)[0]
    accepted: dict[str, tuple[tuple[str, ...], bool]] = {}
    for name, f in item.model_fields.items():
        key = f.alias or name
        sub = _model(f.annotation)
        if sub is not None:
            for sub_name, sub_field in sub.model_fields.items():
                accepted[f"{key}.{sub_field.alias or sub_name}"] = ((key, sub_name), False)
            continue
        accepted[key] = ((key,), get_origin(f.annotation) is list)
    for short, loc in _SHORT.items():
        if ".".join(loc) in accepted:
            accepted[short] = (loc, False)
    return accepted


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _required(section: str) -> list[tuple[str, ...]]:
    """Key paths a row must have (``("location", "lat")`` for a required location)."""
    item = get_args(FILE_KINDS[section].model_fields[section].annotation)[0]
    out: list[tuple[str, ...]] = []
    for name, f in item.model_fields.items():
        if not f.is_required():
            continue
        key = f.alias or name
        sub = _model(f.annotation)
        if sub is None:
            out.append((key,))
        else:
            out += [(key, n) for n, sf in sub.model_fields.items() if sf.is_required()]
    return out


def _columns(
    path: Path,
    section: str,
    line: int,
    cells: list[str],
    positions: _RowPositions,
    problems: list[Problem],
) -> tuple[list[_Column], bool]:
    """The header's columns, and whether rows can be read with them (required ones present).

    Unknown, repeated and missing columns are reported once, at the header, rather than once
    per row of a long table.
    """
    accepted = _accepted(section)
    columns: list[_Column] = []
    seen: dict[tuple[str, ...], str] = {}
    for i, raw in enumerate(cells):
        name = raw.strip()
        at = positions.cell_start(line, cells, i)
        if name not in accepted:
            what = (
                unknown_key_message(name, list(accepted)).replace("key", "column", 1)
                if name
                else "a column without a name"
            )
            problems.append(Problem(path, *at, f"{what} (a column of {section} CSV)"))
            continue
        loc, is_list = accepted[name]
        if loc in seen:
            problems.append(Problem(path, *at, f"column {name!r} repeats {seen[loc]!r}"))
            continue
        seen[loc] = name
        columns.append(_Column(i, loc, is_list))
    missing = [".".join(loc) for loc in _required(section) if loc not in seen]
    for name in missing:
        hint = did_you_mean(name, [c.strip() for c in cells])
        problems.append(Problem(path, line, 1, f"missing column {name!r}{hint}"))
    return columns, not missing


def _item(cells: list[str], columns: list[_Column]) -> dict[str, Any]:
    """One row as the mapping a YAML item would be (empty cells left out)."""
    item: dict[str, Any] = {}
    for column in columns:
        value: Any = cells[column.index].strip()
        if not value:
            continue
        if column.is_list:
            value = [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
        if len(column.loc) == 1:
            item[column.loc[0]] = value
        else:
            item.setdefault(column.loc[0], {})[column.loc[1]] = value
    return item


class _RowPositions(dict[Loc, tuple[int, int]]):
    """Positions keyed like :class:`YamlDoc`'s, a row's computed when first asked about.

    A long table is read without computing any column: only a row a message is about has its
    raw text scanned (:meth:`_locate`).
    """

    def __init__(self, section: str, text: str) -> None:
        super().__init__()
        self._section = section
        self._text = text
        self._line_starts: list[int] | None = None
        # Item index -> (line, cells, columns), for rows not yet located.
        self._pending: dict[int, tuple[int, list[str], list[_Column]]] = {}

    def add_row(
        self,
        line: int,
        cells: list[str],
        index: int | None = None,
        columns: list[_Column] | None = None,
    ) -> None:
        """Remember a row (an item at ``index``; the header when None) for later positions."""
        if index is None:
            self[()] = self[(self._section,)] = (line, 1)
            return
        self[(self._section, index)] = (line, 1)
        self._pending[index] = (line, cells, columns or [])

    def __contains__(self, loc: object) -> bool:
        self._ensure(loc)
        return super().__contains__(loc)

    def get(self, loc: Loc, default: Any = None) -> Any:  # type: ignore[override]
        self._ensure(loc)
        return super().get(loc, default)

    def _ensure(self, loc: object) -> None:
        if isinstance(loc, tuple) and len(loc) > 2 and loc[1] in self._pending:
            self._locate(loc[1])

    def _locate(self, index: int) -> None:
        line, cells, columns = self._pending.pop(index)
        starts = self._cell_starts(line, len(cells))
        for column in columns:
            cell_line, col = starts[column.index]
            loc = (self._section, index, *column.loc)
            if len(column.loc) == 2 and (self._section, index, column.loc[0]) not in self:
                super().__setitem__((self._section, index, column.loc[0]), (cell_line, col))
            super().__setitem__(loc, (cell_line, col))
            if column.is_list:
                self._locate_parts(loc, cells[column.index], cell_line, col)

    def _locate_parts(self, loc: Loc, raw: str, line: int, col: int) -> None:
        """Each item of a ``|``-separated cell, at the column where it starts."""
        offset = 1 if self._char(line, col) == '"' else 0
        j = 0
        at = 0
        for part in raw.split(LIST_SEPARATOR):
            if part.strip():
                lead = len(part) - len(part.lstrip())
                super().__setitem__(loc + (j,), (line, col + offset + at + lead))
                j += 1
            at += len(part) + len(LIST_SEPARATOR)

    def cell_start(self, line: int, cells: list[str], index: int) -> tuple[int, int]:
        """Where cell ``index`` of the row starting at ``line`` starts (past the last cell:
        where the row ends)."""
        starts = self._cell_starts(line, len(cells))
        return starts[index] if index < len(starts) else starts[-1]

    def _char(self, line: int, col: int) -> str:
        begin = self._starts()[line - 1] + col - 1
        return self._text[begin : begin + 1]

    def _starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_END.finditer(self._text)]
        return self._line_starts

    def _cell_starts(self, line: int, n_cells: int) -> list[tuple[int, int]]:
        """``(line, col)`` of the start of each cell of the row at ``line``, and of its end,
        scanning its raw text as the csv module's default dialect reads it."""
        starts = self._starts()
        pos = starts[line - 1]
        text = self._text
        found = [pos]
        quoted = False
        at_cell_start = True
        while pos < len(text):
            ch = text[pos]
            if quoted:
                if ch == '"':
                    if text.startswith('"', pos + 1):
                        pos += 1  # a doubled quote inside a quoted cell
                    else:
                        quoted = False
            elif ch == '"' and at_cell_start:
                quoted = True
            elif ch == ",":
                found.append(pos + 1)
                at_cell_start = True
                pos += 1
                continue
            elif ch in "\r\n":
                break
            at_cell_start = False
            pos += 1
        found.append(pos)
        out = []
        for offset in found[: max(n_cells, 1) + 1]:
            row_line = line
            while row_line < len(starts) and starts[row_line] <= offset:
                row_line += 1  # a quoted cell ran over a line break
            out.append((row_line, offset - starts[row_line - 1] + 1))
        return out


def table_rows(section: str, items: list[dict[str, Any]]) -> list[list[str]]:
    """``items`` (as a YAML section holds them) as CSV rows, the header first: the inverse of
    reading, for exporting a YAML directory to a spreadsheet (and for tests and benchmarks).

    Columns are the model's keys that some item uses, in the model's order; ``location`` is
    written as ``lat``, ``lon`` and ``crs``.
    """
    accepted = _accepted(section)
    short = {loc: name for name, (loc, _) in accepted.items() if name in _SHORT}
    used: list[tuple[str, tuple[str, ...], bool]] = []
    for name, (loc, is_list) in accepted.items():
        if name in _SHORT:  # written below, for its `location.` name
            continue
        shown = short.get(loc, name)
        if any(_value_at(item, loc) is not None for item in items):
            used.append((shown, loc, is_list))
    rows = [[name for name, _, _ in used]]
    for item in items:
        row = []
        for _, loc, is_list in used:
            value = _value_at(item, loc)
            if value is None:
                row.append("")
            elif is_list:
                row.append(LIST_SEPARATOR.join(str(v) for v in value))
            elif isinstance(value, bool):
                row.append("true" if value else "false")
            else:
                row.append(str(value))
        rows.append(row)
    return rows


def _value_at(item: dict[str, Any], loc: tuple[str, ...]) -> Any:
    value: Any = item
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
    return value
