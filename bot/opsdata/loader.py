"""Discover, validate and cross-check every ops data file into one :class:`OpsData` value.

Every ``*.yaml``/``*.yml`` file under the campaigns folder is read (files and folders whose
name starts with a dot are skipped: editor backups, version control). Its top-level keys say
what it holds: a single campaign (``id`` + ``kind``), or any number of the sections of
:data:`FILE_KINDS` (a directory file with ``groups:``, ``managers:`` and ``merchants:`` is
normal). Long tables may also be CSV: ``groups*.csv``, ``merchants*.csv`` and
``managers*.csv`` (see :mod:`bot.opsdata.csvtables`). Every
``*.j2`` file under the templates folder becomes a template, named by its path relative to that
folder (``meal.j2``, ``welcome/default.j2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bot.opsdata.bundle import OpsData, Source
from bot.opsdata.csvtables import read_table
from bot.opsdata.models import FILE_KINDS, CalendarOverrides, Campaign
from bot.opsdata.problems import (
    Loc,
    OpsDataError,
    Problem,
    YamlDoc,
    did_you_mean,
    problems_from_errors,
    read_yaml,
    unknown_key_message,
)

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class _Found:
    """An entity read from a file, and where (for cross-file messages).

    ``value`` is the validated model, or, when ``valid`` is False, the raw mapping of an item
    that failed validation: its schema errors are reported already, and its well-formed
    references (id, template, groups, manager) are still checked, so fixing one mistake does
    not reveal the next one in a second run.
    """

    value: Any
    doc: YamlDoc
    loc: Loc
    valid: bool = True

    def _at(self, path: tuple[str, ...]) -> Any:
        """The value at ``path``: attributes of a model, keys of a raw mapping; else None."""
        value = self.value
        for key in path:
            if self.valid:
                value = getattr(value, key, None)
            elif isinstance(value, dict):
                value = value.get(key)
            else:
                return None
        return value

    def text(self, *path: str) -> str | None:
        """The text at ``path`` (``"targets", "groups"``...), or None when not written as text."""
        value = self._at(path)
        return value if isinstance(value, str) else None

    def texts(self, *path: str) -> list[tuple[int, str]]:
        """``(index, text)`` for each item at ``path`` that is text (a list of group ids)."""
        value = self._at(path)
        if not isinstance(value, list):
            return []
        return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


# The sections whose items carry an identity, as (what it is called, the key that names it).
_IDENTIFIED = {
    "campaigns": ("campaign", "id"),
    "groups": ("group", "id"),
    "merchants": ("merchant", "id"),
    "managers": ("manager", "id"),
    "gazetteer": ("gazetteer city", "name"),
    "channels": ("channel", "id"),
}
# Sections that hold one mapping and may be written once in the whole of the ops data.
_SINGLE = ("referral", "calendar")


@dataclass
class _Collected:
    """What the files hold, section by section (valid entities only), and what went wrong."""

    sections: dict[str, list[_Found]] = field(default_factory=dict)
    # Items that failed validation, as raw mappings (``_Found.valid`` False), by section.
    broken: dict[str, list[_Found]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Ids written in items that failed validation still count as known, so that one broken
    # group does not also make every campaign targeting it "unknown".
    written_ids: dict[str, set[str]] = field(default_factory=dict)

    def of(self, section: str) -> list[_Found]:
        return self.sections.setdefault(section, [])


@dataclass(frozen=True)
class LoadedOpsData:
    """The result of a lenient load: the valid part of the ops data and every problem.

    ``ops`` holds the entities that are valid on their own and agree with the rest (a campaign
    whose template is missing is left out); later checks (templates, warnings) run on it.
    ``written_ids`` maps a section (``campaigns``, ``groups``, ...) to every id written in it,
    valid or not, so a reference to a broken entity is not also reported as unknown.
    """

    ops: OpsData
    problems: list[Problem]
    written_ids: dict[str, frozenset[str]]

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the ops data unusable (everything but warnings)."""
        return [p for p in self.problems if not p.is_warning]


def load_opsdata(campaigns_dir: Path, templates_dir: Path) -> OpsData:
    """Read and validate the whole of the ops data.

    Raises :class:`OpsDataError` listing every problem found (syntax, schema, and cross-file:
    duplicate ids, unknown templates, groups and managers, a second referral or calendar file).
    A version with any error is rejected whole: hot reload keeps the last good one.
    """
    loaded = read_opsdata(campaigns_dir, templates_dir)
    if loaded.errors:
        raise OpsDataError(loaded.problems)
    return loaded.ops


def read_opsdata(campaigns_dir: Path, templates_dir: Path) -> LoadedOpsData:
    """Read the ops data leniently: every problem, and the entities that are valid.

    A file that cannot be parsed is skipped; in a file that can, each section, and each item of
    a list section, is validated on its own, so one mistake hides nothing else. This is what
    ``qunfu check`` runs; :func:`load_opsdata` is the strict form the running bot uses.
    """
    found = _Collected()
    templates, template_problems = load_templates(templates_dir)
    found.problems += template_problems
    if not campaigns_dir.is_dir():
        found.problems.append(Problem(campaigns_dir, 1, 1, "campaigns folder not found"))
    else:
        for path in _files(campaigns_dir, _YAML_SUFFIXES + (".csv",)):
            if path.suffix == ".csv":
                _read_csv(path, found)
            else:
                _read_file(path, found)
    base = campaigns_dir.parent
    broken = {section: found.broken.get(section, []) for section in _IDENTIFIED}
    unique = {
        section: _unique(found.of(section) + broken[section], what, base, found.problems, key)
        for section, (what, key) in _IDENTIFIED.items()
    }
    single = {
        section: _single(found.of(section), section, base, found.problems) for section in _SINGLE
    }
    groups_known = set(unique["groups"]) | found.written_ids.get("groups", set())
    managers_known = set(unique["managers"]) | found.written_ids.get("managers", set())
    missing = _unknown_templates(unique["campaigns"], templates, templates_dir, found.problems)
    _unknown_templates(
        {str(i): c for i, c in enumerate(broken["campaigns"])},
        templates,
        templates_dir,
        found.problems,
    )
    found.problems += _unknown_target_groups(
        [*unique["campaigns"].values(), *broken["campaigns"]], groups_known
    )
    found.problems += _unknown_managers(
        [*unique["groups"].values(), *broken["groups"]], managers_known
    )
    found.problems += _duplicate_questions(found.of("faq"))
    campaigns = {k: f for k, f in unique["campaigns"].items() if k not in missing}
    referral, calendar = single["referral"], single["calendar"]
    ops = OpsData(
        campaigns={k: f.value for k, f in campaigns.items()},
        groups={k: f.value for k, f in unique["groups"].items()},
        merchants={k: f.value for k, f in unique["merchants"].items()},
        managers={k: f.value for k, f in unique["managers"].items()},
        faq=tuple(f.value for f in found.of("faq")),
        referral=referral.value if referral else None,
        calendar=calendar.value if calendar else CalendarOverrides(),
        templates=templates,
        gazetteer={k: f.value for k, f in unique["gazetteer"].items()},
        channels={k: f.value for k, f in unique["channels"].items()},
        campaigns_dir=campaigns_dir,
        templates_dir=templates_dir,
        campaign_sources={k: Source(f.doc, f.loc) for k, f in campaigns.items()},
        group_sources={k: Source(f.doc, f.loc) for k, f in unique["groups"].items()},
    )
    in_order = dict.fromkeys(found.problems)  # keeps the order problems were found in, for ties
    problems = sorted(in_order, key=lambda p: (str(p.path), p.line, p.col))
    written = {
        section: frozenset(ids | {str(k) for k in unique.get(section, {})})
        for section, ids in found.written_ids.items()
    }
    for section, entities in unique.items():
        written.setdefault(section, frozenset(entities))
    return LoadedOpsData(ops, problems, written)


def _duplicate_questions(entries: list[_Found]) -> list[Problem]:
    """A warning at each FAQ question written again (same text, spaces aside), naming where it
    was first written: only one of the two answers can ever be given."""
    first: dict[str, _Found] = {}
    out = []
    for f in entries:
        key = "".join(str(f.value.question).split())
        seen = first.setdefault(key, f)
        if seen is f:
            continue
        line, _ = seen.doc.value_pos(seen.loc + ("question",))
        where = f"line {line}" if seen.doc.path == f.doc.path else f"{seen.doc.path.name}:{line}"
        out.append(
            f.doc.warning(
                f.loc + ("question",),
                f"the same question is already in the FAQ at {where}: only one of the two "
                "answers is ever given; merge them, or reword one",
            )
        )
    return out


def load_templates(templates_dir: Path) -> tuple[dict[str, str], list[Problem]]:
    """Every ``*.j2`` under ``templates_dir``, keyed by posix relative path, and read problems."""
    if not templates_dir.is_dir():
        return {}, [Problem(templates_dir, 1, 1, "templates folder not found")]
    templates: dict[str, str] = {}
    problems: list[Problem] = []
    for path in _files(templates_dir, (".j2",)):
        try:
            templates[path.relative_to(templates_dir).as_posix()] = path.read_text("utf-8-sig")
        except UnicodeDecodeError as e:
            problems.append(Problem(path, 1, 1, f"not UTF-8 text ({e.reason})"))
        except OSError as e:
            problems.append(Problem(path, 1, 1, f"cannot read the file: {e.strerror}"))
    return templates, problems


class OpsDataSource:
    """The ops data as last loaded successfully, for hot reload.

    ``check`` (optional) runs on a freshly loaded value before it is accepted, for checks that
    live elsewhere (rendering templates against a sample context, say); its problems reject the
    value like load problems do.
    """

    def __init__(
        self,
        campaigns_dir: Path,
        templates_dir: Path,
        check: Callable[[OpsData], list[Problem]] | None = None,
    ) -> None:
        self.campaigns_dir = campaigns_dir
        self.templates_dir = templates_dir
        self._check = check
        self._current: OpsData | None = None

    @property
    def current(self) -> OpsData | None:
        """The last good ops data, or None before the first successful load."""
        return self._current

    def reload(self) -> tuple[OpsData | None, list[Problem]]:
        """Load again. On success, ``current`` becomes the new value and is returned with no
        problems; otherwise ``current`` is left as it was and ``(None, problems)`` is returned.
        """
        try:
            data = load_opsdata(self.campaigns_dir, self.templates_dir)
        except OpsDataError as e:
            return None, e.problems
        problems = self._check(data) if self._check else []
        if problems:
            return None, problems
        self._current = data
        return data, []


# --- reading one file -----------------------------------------------------------------------


def _files(root: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if path.suffix in suffixes and path.is_file() and not any(p.startswith(".") for p in rel):
            yield path


def _accepted_keys() -> str:
    return "a single campaign (`id` + `kind`) or one of " + ", ".join(f"`{k}:`" for k in FILE_KINDS)


def _read_file(path: Path, found: _Collected) -> None:
    try:
        doc = read_yaml(path)
    except OpsDataError as e:
        found.problems += e.problems
        return
    data = doc.data
    if data is None:
        return
    if not isinstance(data, dict):
        found.problems.append(
            Problem(path, 1, 1, "expected a mapping at the top level: " + _accepted_keys())
        )
        return
    sections = [k for k in data if k in FILE_KINDS]
    if not sections and ("id" in data or "kind" in data):
        if isinstance(data.get("id"), str):
            found.written_ids.setdefault("campaigns", set()).add(data["id"])
        _read_items(doc, "campaigns", Campaign, [((), data)], found)
        return
    if not sections:
        hints = [h for h in (did_you_mean(str(k), FILE_KINDS) for k in data) if h]
        message = f"not an ops data file: expected {_accepted_keys()}"
        found.problems.append(Problem(path, 1, 1, message + (hints[0] if hints else "")))
        return
    for key in data:
        if key not in FILE_KINDS:
            found.problems.append(
                doc.problem((key,), unknown_key_message(key, list(FILE_KINDS)), at_key=True)
            )
    for section in sections:
        _read_section(doc, section, found)


def _read_csv(path: Path, found: _Collected) -> None:
    """A long table written as CSV (:mod:`bot.opsdata.csvtables`), validated as YAML is."""
    table = read_table(path)
    found.problems += table.problems
    if table.section is not None:
        found.written_ids.setdefault(table.section, set()).update(table.ids)
    if table.section is not None and table.doc is not None:
        _read_section(table.doc, table.section, found)


def _read_section(doc: YamlDoc, section: str, found: _Collected) -> None:
    """Validate one top-level section; a list section item by item."""
    model = FILE_KINDS[section]
    value = doc.data[section]
    item_model = _item_model(model, section)
    if item_model is not None and isinstance(value, list):
        if section in _IDENTIFIED:
            key = _IDENTIFIED[section][1]
            found.written_ids.setdefault(section, set()).update(
                item[key]
                for item in value
                if isinstance(item, dict) and isinstance(item.get(key), str)
            )
        _read_items(
            doc, section, item_model, [((section, i), v) for i, v in enumerate(value)], found
        )
        return
    try:
        whole = model.model_validate({section: value})
    except ValidationError as e:
        found.problems += problems_from_errors(doc, model, e.errors(include_url=False))
        return
    if item_model is not None:  # a list written some other way that pydantic still accepts
        kept = found.of(section)
        kept += [_Found(v, doc, (section, i)) for i, v in enumerate(getattr(whole, section))]
        return
    if section not in _SINGLE:  # a kind added to FILE_KINDS without a home in OpsData yet
        found.problems.append(
            doc.problem((section,), f"`{section}:` sections are not supported yet", at_key=True)
        )
        return
    found.of(section).append(_Found(getattr(whole, section), doc, (section,)))


def _read_items(
    doc: YamlDoc,
    section: str,
    model: type[BaseModel],
    items: list[tuple[Loc, Any]],
    found: _Collected,
) -> None:
    """Validate each item on its own: a broken one is reported and left out, the rest kept."""
    kept = found.of(section)
    for loc, item in items:
        try:
            kept.append(_Found(model.model_validate(item), doc, loc))
        except ValidationError as e:
            found.problems += problems_from_errors(
                doc, model, e.errors(include_url=False), base=loc
            )
            if isinstance(item, dict):
                found.broken.setdefault(section, []).append(_Found(item, doc, loc, valid=False))


def _item_model(model: type[BaseModel], section: str) -> type[BaseModel] | None:
    """The model of one item when ``section`` is a list (``groups: [...]``), else None."""
    annotation = model.model_fields[section].annotation
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
    return None


# --- cross-file checks ----------------------------------------------------------------------


def _where(found: _Found, loc: Loc, base: Path) -> str:
    line, _ = found.doc.value_pos(found.loc + loc)
    try:
        shown = found.doc.path.relative_to(base)
    except ValueError:
        shown = found.doc.path
    return f"{shown}:{line}"


def _unique(
    items: list[_Found], what: str, base: Path, problems: list[Problem], key: str = "id"
) -> dict[str, _Found]:
    """The first valid entity of each id; an id written twice (valid or not) is a problem at
    every place it is written, each naming the other places."""
    by_id: dict[str, list[_Found]] = {}
    for item in items:
        ident = item.text(key)
        if ident is not None:
            by_id.setdefault(ident, []).append(item)
    for places in by_id.values():
        if len(places) > 1 and not all(f.valid for f in places):
            # Broken items were listed after the valid ones: back to the order written (a
            # duplicate's positions are needed for its message anyway).
            places.sort(key=lambda f: (f.doc.path.parts, f.doc.key_pos(f.loc + (key,))))
    for ident, places in by_id.items():
        if len(places) < 2:
            continue
        first, *others = places
        also = ", ".join(_where(o, (key,), base) for o in others)
        problems.append(
            first.doc.problem(
                first.loc + (key,), f"duplicate {what} {key} {ident!r} (also defined at {also})"
            )
        )
        problems += [
            o.doc.problem(
                o.loc + (key,),
                f"duplicate {what} {key} {ident!r} (already defined at "
                f"{_where(first, (key,), base)})",
            )
            for o in others
        ]
    firsts = {ident: next((f for f in places if f.valid), None) for ident, places in by_id.items()}
    return {ident: f for ident, f in firsts.items() if f is not None}


def _single(items: list[_Found], key: str, base: Path, problems: list[Problem]) -> _Found | None:
    for extra in items[1:]:
        problems.append(
            extra.doc.problem(
                extra.loc,
                f"only one `{key}:` section is allowed; the first is at "
                f"{_where(items[0], (), base)}",
                at_key=True,
            )
        )
    return items[0] if items else None


def _unknown_templates(
    campaigns: dict[str, _Found],
    templates: dict[str, str],
    templates_dir: Path,
    problems: list[Problem],
) -> set[str]:
    """Ids of the campaigns whose template does not exist; each is reported at `template:`."""
    missing = set()
    for k, c in campaigns.items():
        name = c.text("template")
        if name is None or name in templates:
            continue
        missing.add(k)
        problems.append(
            c.doc.problem(
                c.loc + ("template",),
                f"template {name!r} not found in {templates_dir.name}/"
                + did_you_mean(name, templates),
            )
        )
    return missing


def _unknown_target_groups(campaigns: Iterable[_Found], groups: set[str]) -> list[Problem]:
    problems = []
    for c in campaigns:
        for i, gid in c.texts("targets", "groups"):
            if gid not in groups:
                problems.append(
                    c.doc.problem(
                        c.loc + ("targets", "groups", i),
                        f"unknown group {gid!r}" + did_you_mean(gid, groups),
                    )
                )
    return problems


def _unknown_managers(groups: Iterable[_Found], managers: set[str]) -> list[Problem]:
    problems = []
    for g in groups:
        manager = g.text("manager")
        if manager is not None and manager not in managers:
            problems.append(
                g.doc.problem(
                    g.loc + ("manager",),
                    f"unknown manager {manager!r}" + did_you_mean(manager, managers),
                )
            )
    return problems
