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
from bot.opsdata.loader import load_opsdata
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
        return settings_from_mapping(data, base_dir=path.parent), doc
    except ValidationError as e:
        raise OpsDataError(_settings_problems(doc, e)) from None


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
    """Everything ``qunfu check`` reports: config, then ops data, then templates.

    Stops after the config problems when config.yaml is broken (the folders it names are then
    unknown), and before the templates when the ops data is broken. Paths under the current
    folder are shown relative to it.
    """
    try:
        settings, doc = _load(config_path)
    except OpsDataError as e:
        return _shown(e.problems)
    try:
        ops = load_opsdata(settings.campaigns_dir, settings.templates_dir)
    except OpsDataError as e:
        return _shown(e.problems)
    problems = check_templates(ops, now)
    from bot.opsdata.lint import warnings

    problems += warnings(ops, settings, now)
    welcome = settings.welcome.campaign
    if welcome is not None and welcome not in ops.campaigns:
        problems.insert(
            0,
            doc.problem(
                ("welcome", "campaign"),
                f"unknown campaign {welcome!r}" + did_you_mean(welcome, ops.campaigns),
            ),
        )
    return _shown(problems)


def _shown(problems: list[Problem]) -> list[Problem]:
    cwd = Path.cwd()
    return [p.relative_to(cwd) if p.path.is_absolute() else p for p in problems]
