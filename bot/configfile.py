"""Reading config.yaml with positions, and ``qunfu check``: every problem in one list.

Settings may also come from ``QUNFU_*`` environment variables (see :mod:`bot.config`). A bad
environment value has no place in a file: its problem has the pseudo path ``<env>``, line and
column 0, and a message starting with the variable's name, e.g.
``<env>:0:0: QUNFU_OUTBOX__RATE_PER_MINUTE: expected a number, got 'fast'``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from bot.config import Settings, settings_from_mapping
from bot.opsdata.bundle import OpsData
from bot.opsdata.loader import read_opsdata
from bot.opsdata.problems import (
    Loc,
    OpsDataError,
    Problem,
    YamlDoc,
    did_you_mean,
    problems_from_errors,
    read_yaml,
)
from bot.templating import check_templates

ENV_PATH = Path("<env>")
_ENV_PREFIX = "QUNFU_"


def load_settings(path: Path) -> Settings:
    """Read and validate config.yaml (relative paths in it resolve against its folder).

    Raises :class:`OpsDataError` with ``PATH:LINE:COL`` problems: a missing file (at 1:1), YAML
    syntax, unknown keys (with a did-you-mean), bad values; bad ``QUNFU_*`` variables as
    ``<env>`` problems.
    """
    settings, _ = _load(path)
    return settings


def _load(path: Path) -> tuple[Settings, YamlDoc]:
    if not path.is_file():
        raise OpsDataError([Problem(path, 1, 1, "config file not found")])
    doc = read_yaml(path)
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise OpsDataError([Problem(path, 1, 1, "expected a mapping of settings at the top level")])
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise OpsDataError(
            [
                doc.problem((k,), f"expected a setting name, got {k!r}", at_key=True)
                for k in bad_keys
            ]
        )
    try:
        settings = settings_from_mapping(data, base_dir=path.parent)
    except ValidationError as e:
        raise OpsDataError(_settings_problems(doc, e)) from None
    if duplicated := _duplicate_accounts(doc, settings):
        raise OpsDataError(duplicated)
    return settings, doc


def _duplicate_accounts(doc: YamlDoc, settings: Settings) -> list[Problem]:
    """Two ``accounts:`` entries with one id: an error at each later one."""
    first: dict[str, int] = {}
    problems = []
    for i, account in enumerate(settings.accounts):
        if account.id in first:
            line, _ = doc.value_pos(("accounts", first[account.id], "id"))
            problems.append(
                doc.problem(
                    ("accounts", i, "id"),
                    f"account {account.id!r} is already defined (line {line}); "
                    "expected a unique account id",
                )
            )
        first.setdefault(account.id, i)
    return problems


def _unknown_accounts(ops: OpsData, settings: Settings) -> list[Problem]:
    """Groups whose ``account:`` names no account of config.yaml, at the group's key."""
    known = {a.id for a in settings.bot_accounts()}
    problems = []
    for group in ops.groups.values():
        if group.account is None or group.account in known:
            continue
        source = ops.group_sources.get(group.id)
        if source is not None:
            problems.append(
                source.problem(
                    ("account",),
                    f"unknown account {group.account!r}: expected one of config.yaml's "
                    f"`accounts:` ({', '.join(sorted(known))})"
                    + did_you_mean(group.account, known),
                )
            )
    return problems


def _settings_problems(doc: YamlDoc, error: ValidationError) -> list[Problem]:
    env = _env_paths()
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(str(p).lower() if isinstance(p, str) else p for p in err["loc"])
        var = next((name for name, parts in env.items() if loc[: len(parts)] == parts), None)
        (problem,) = problems_from_errors(doc, Settings, [err])
        if var is not None:
            problem = Problem(ENV_PATH, 0, 0, f"{var}: {problem.message}")
        problems.append(problem)
    return sorted(problems, key=lambda p: (p.path != ENV_PATH, p.line, p.col))


def _env_paths() -> dict[str, Loc]:
    # QUNFU_DATABASE__URL -> ("database", "url"); the environment wins over the file.
    return {
        name: tuple(name[len(_ENV_PREFIX) :].lower().split("__"))
        for name in os.environ
        if name.upper().startswith(_ENV_PREFIX)
    }


def check_all(config_path: Path, now: datetime) -> list[Problem]:
    """Everything ``qunfu check`` reports, in one run: config, ops data, templates, warnings.

    Nothing hides anything else: a broken config.yaml is reported and the ops data is still
    checked, in the folders it names when those can be read (else ``campaigns/`` and
    ``templates/`` beside it); the ops data is read leniently (see
    :func:`~bot.opsdata.loader.read_opsdata`), and templates and warnings are checked on the
    part of it that is valid. Only a missing config.yaml stops there (the folders to check are
    then a guess). Paths under the current folder are shown relative to it.
    """
    if not config_path.is_file():
        return _shown([Problem(config_path, 1, 1, "config file not found")])
    problems: list[Problem] = []
    settings: Settings | None
    doc: YamlDoc | None
    try:
        settings, doc = _load(config_path)
    except OpsDataError as e:
        problems += e.problems
        settings, doc = _salvage(config_path)
    campaigns_dir, templates_dir = _folders(config_path, settings, doc)
    loaded = read_opsdata(campaigns_dir, templates_dir)
    ops = loaded.ops
    if settings is not None and doc is not None:
        welcome = settings.welcome.campaign
        known = set(ops.campaigns) | loaded.written_ids.get("campaigns", frozenset())
        if welcome is not None and welcome not in known:
            problems.append(
                doc.problem(
                    ("welcome", "campaign"),
                    f"unknown campaign {welcome!r}" + did_you_mean(welcome, known),
                )
            )
    problems += loaded.problems
    problems += check_templates(ops, now)
    if settings is not None:
        problems += _unknown_accounts(ops, settings)
        from bot.opsdata.lint import warnings

        problems += warnings(ops, settings, now)
    return _shown(problems)


def _salvage(path: Path) -> tuple[Settings | None, YamlDoc | None]:
    """The settings of a config.yaml that has errors, with each broken top-level key left at
    its default; None when even that fails (a bad ``QUNFU_*`` variable, say)."""
    try:
        doc = read_yaml(path)
    except OpsDataError:
        doc = None
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    data = {k: v for k, v in data.items() if isinstance(k, str)}
    for _ in range(2):
        try:
            return settings_from_mapping(data, base_dir=path.parent), doc
        except ValidationError as e:
            broken = {str(err["loc"][0]).lower() for err in e.errors() if err["loc"]}
            data = {k: v for k, v in data.items() if k.lower() not in broken}
    return None, doc


def _folders(path: Path, settings: Settings | None, doc: YamlDoc | None) -> tuple[Path, Path]:
    """The campaigns and templates folders to check, even when the config is broken."""
    if settings is not None:
        return settings.campaigns_dir, settings.templates_dir
    base = path.parent.resolve()
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    folders = []
    for key, default in (("campaigns_dir", "campaigns"), ("templates_dir", "templates")):
        named = data.get(key)
        folder = Path(named) if isinstance(named, str) and named.strip() else Path(default)
        folders.append(folder if folder.is_absolute() else base / folder)
    return folders[0], folders[1]


def _shown(problems: list[Problem]) -> list[Problem]:
    cwd = Path.cwd()
    return [p.relative_to(cwd) if p.path.is_absolute() else p for p in problems]
