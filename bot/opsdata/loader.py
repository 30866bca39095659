"""Discover, validate and cross-check every ops data file into one :class:`OpsData` value.

Every ``*.yaml``/``*.yml`` file under the campaigns folder is read (files and folders whose
name starts with a dot are skipped: editor backups, version control). Its top-level keys say
what it holds: a single campaign (``id`` + ``kind``) or one of :data:`FILE_KINDS`. Every
``*.j2`` file under the templates folder becomes a template, named by its path relative to that
folder (``meal.j2``, ``welcome/default.j2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.opsdata.bundle import OpsData, Source
from bot.opsdata.models import (
    FILE_KINDS,
    CalendarFile,
    CalendarOverrides,
    Campaign,
    CampaignList,
    ChannelsFile,
    FaqFile,
    GazetteerFile,
    GroupsFile,
    ManagersFile,
    MerchantsFile,
    ReferralFile,
)
from bot.opsdata.problems import (
    Loc,
    OpsDataError,
    Problem,
    YamlDoc,
    did_you_mean,
    read_yaml,
    validate,
)

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class _Found:
    """An entity read from a file, and where (for cross-file messages)."""

    value: Any
    doc: YamlDoc
    loc: Loc


@dataclass
class _Collected:
    campaigns: list[_Found] = field(default_factory=list)
    groups: list[_Found] = field(default_factory=list)
    merchants: list[_Found] = field(default_factory=list)
    managers: list[_Found] = field(default_factory=list)
    faq: list[Any] = field(default_factory=list)
    referral: list[_Found] = field(default_factory=list)
    calendar: list[_Found] = field(default_factory=list)
    gazetteer: list[_Found] = field(default_factory=list)
    channels: list[_Found] = field(default_factory=list)
    # Ids written in files that failed validation still count as known, so that one broken
    # group does not also make every campaign targeting it "unknown".
    written_ids: dict[str, set[str]] = field(default_factory=dict)


def load_opsdata(campaigns_dir: Path, templates_dir: Path) -> OpsData:
    """Read and validate the whole of the ops data.

    Raises :class:`OpsDataError` listing every problem found (syntax, schema, and cross-file:
    duplicate ids, unknown templates, groups and managers, a second referral or calendar file).
    """
    problems: list[Problem] = []
    templates, template_problems = load_templates(templates_dir)
    problems += template_problems
    found = _Collected()
    if not campaigns_dir.is_dir():
        problems.append(Problem(campaigns_dir, 1, 1, "campaigns folder not found"))
    else:
        for path in _files(campaigns_dir, _YAML_SUFFIXES):
            try:
                _read_file(path, found)
            except OpsDataError as e:
                problems += e.problems
    base = campaigns_dir.parent
    campaigns = _unique(found.campaigns, "campaign", base, problems)
    groups = _unique(found.groups, "group", base, problems)
    merchants = _unique(found.merchants, "merchant", base, problems)
    managers = _unique(found.managers, "manager", base, problems)
    referral = _single(found.referral, "referral", base, problems)
    calendar = _single(found.calendar, "calendar", base, problems)
    cities = _unique(found.gazetteer, "gazetteer city", base, problems, key="name")
    channels = _unique(found.channels, "channel", base, problems)
    problems += _unknown_templates(found.campaigns, templates, templates_dir)
    problems += _unknown_target_groups(
        found.campaigns, set(groups) | found.written_ids.get("groups", set())
    )
    problems += _unknown_managers(
        found.groups, set(managers) | found.written_ids.get("managers", set())
    )
    if problems:
        unique = dict.fromkeys(problems)  # keeps the order problems were found in, for ties
        raise OpsDataError(sorted(unique, key=lambda p: (str(p.path), p.line, p.col)))
    return OpsData(
        campaigns={k: f.value for k, f in campaigns.items()},
        groups={k: f.value for k, f in groups.items()},
        merchants={k: f.value for k, f in merchants.items()},
        managers={k: f.value for k, f in managers.items()},
        faq=tuple(found.faq),
        referral=referral.value if referral else None,
        calendar=calendar.value if calendar else CalendarOverrides(),
        templates=templates,
        gazetteer={k: f.value for k, f in cities.items()},
        channels={k: f.value for k, f in channels.items()},
        campaigns_dir=campaigns_dir,
        templates_dir=templates_dir,
        campaign_sources={k: Source(f.doc, f.loc) for k, f in campaigns.items()},
    )


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
    doc = read_yaml(path)
    data = doc.data
    if data is None:
        return
    if not isinstance(data, dict):
        raise OpsDataError(
            [Problem(path, 1, 1, "expected a mapping at the top level: " + _accepted_keys())]
        )
    kinds = [k for k in data if k in FILE_KINDS]
    if not kinds and ("id" in data or "kind" in data):
        found.campaigns.append(_Found(validate(doc, Campaign), doc, ()))
        return
    if not kinds:
        hints = [h for h in (did_you_mean(str(k), FILE_KINDS) for k in data) if h]
        message = f"not an ops data file: expected {_accepted_keys()}"
        raise OpsDataError([Problem(path, 1, 1, message + (hints[0] if hints else ""))])
    if len(kinds) > 1:
        raise OpsDataError(
            [
                doc.problem(
                    (kinds[1],),
                    f"`{kinds[1]}:` belongs in a file of its "
                    f"own; this file already holds `{kinds[0]}:`",
                    at_key=True,
                )
            ]
        )
    items = data[kinds[0]]
    if isinstance(items, list):
        found.written_ids.setdefault(kinds[0], set()).update(
            item["id"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        )
    _collect(kinds[0], doc, validate(doc, FILE_KINDS[kinds[0]]), found)


def _collect(kind: str, doc: YamlDoc, model: BaseModel, found: _Collected) -> None:
    if isinstance(model, CampaignList):
        found.campaigns += [_Found(c, doc, ("campaigns", i)) for i, c in enumerate(model.campaigns)]
    elif isinstance(model, GroupsFile):
        found.groups += [_Found(g, doc, ("groups", i)) for i, g in enumerate(model.groups)]
    elif isinstance(model, MerchantsFile):
        found.merchants += [_Found(m, doc, ("merchants", i)) for i, m in enumerate(model.merchants)]
    elif isinstance(model, ManagersFile):
        found.managers += [_Found(m, doc, ("managers", i)) for i, m in enumerate(model.managers)]
    elif isinstance(model, FaqFile):
        found.faq += model.faq
    elif isinstance(model, ReferralFile):
        found.referral.append(_Found(model.referral, doc, ("referral",)))
    elif isinstance(model, CalendarFile):
        found.calendar.append(_Found(model.calendar, doc, ("calendar",)))
    elif isinstance(model, GazetteerFile):
        found.gazetteer += [_Found(c, doc, ("gazetteer", i)) for i, c in enumerate(model.gazetteer)]
    elif isinstance(model, ChannelsFile):
        found.channels += [_Found(c, doc, ("channels", i)) for i, c in enumerate(model.channels)]
    else:  # a kind added to FILE_KINDS without a home in OpsData yet
        raise OpsDataError(
            [doc.problem((kind,), f"`{kind}:` files are not supported yet", at_key=True)]
        )


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
    by_id: dict[str, _Found] = {}
    for item in items:
        ident = getattr(item.value, key)
        first = by_id.get(ident)
        if first is None:
            by_id[ident] = item
            continue
        problems.append(
            item.doc.problem(
                item.loc + (key,),
                f"duplicate {what} {key} {ident!r} (already defined at "
                f"{_where(first, (key,), base)})",
            )
        )
    return by_id


def _single(items: list[_Found], key: str, base: Path, problems: list[Problem]) -> _Found | None:
    for extra in items[1:]:
        problems.append(
            extra.doc.problem(
                extra.loc,
                f"only one `{key}:` file is allowed; the first is at {_where(items[0], (), base)}",
                at_key=True,
            )
        )
    return items[0] if items else None


def _unknown_templates(
    campaigns: list[_Found], templates: dict[str, str], templates_dir: Path
) -> list[Problem]:
    return [
        c.doc.problem(
            c.loc + ("template",),
            f"template {c.value.template!r} not found in {templates_dir.name}/"
            + did_you_mean(c.value.template, templates),
        )
        for c in campaigns
        if c.value.template not in templates
    ]


def _unknown_target_groups(campaigns: list[_Found], groups: set[str]) -> list[Problem]:
    problems = []
    for c in campaigns:
        for i, gid in enumerate(c.value.targets.groups):
            if gid not in groups:
                problems.append(
                    c.doc.problem(
                        c.loc + ("targets", "groups", i),
                        f"unknown group {gid!r}" + did_you_mean(gid, groups),
                    )
                )
    return problems


def _unknown_managers(groups: list[_Found], managers: set[str]) -> list[Problem]:
    return [
        g.doc.problem(
            g.loc + ("manager",),
            f"unknown manager {g.value.manager!r}" + did_you_mean(g.value.manager, managers),
        )
        for g in groups
        if g.value.manager is not None and g.value.manager not in managers
    ]
