"""Rendering the Jinja templates ops staff write, safely and with errors they can act on.

Templates run in a sandbox with ``StrictUndefined``: a misspelt variable is an error naming it
and its line, never a silently empty message. Member-provided text (nicknames, messages) only
ever enters as context values, never as template source, so ``{{ 7*7 }}`` in a nickname stays
text.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FunctionLoader, StrictUndefined, Template, TemplateNotFound, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import LoopContext, missing
from jinja2.sandbox import SandboxedEnvironment

from bot.lottery.rules import lottery_context
from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WEEKDAY_ZH, WEEKDAYS, Campaign
from bot.opsdata.problems import Problem, did_you_mean
from bot.template_names import INCLUDE_LOOP, TemplateNames, TemplateUse
from bot.template_shapes import ANYTHING, Record, shape_of

_SHANGHAI = ZoneInfo("Asia/Shanghai")


class TemplateRenderError(Exception):
    """A template that cannot be rendered: which one, at which line (0: unknown), and why."""

    def __init__(self, name: str, line: int, message: str) -> None:
        self.name = name
        self.line = line
        self.message = message
        super().__init__(f"{name}:{line}: {message}")


class _MissingValue(UndefinedError):
    """An UndefinedError that remembers what was looked up, for a better message."""

    def __init__(self, message: str, *, obj: Any, name: Any) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Undefined(StrictUndefined):
    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        if hint is None and exc is UndefinedError:  # the sandbox passes SecurityError + a hint
            self._undefined_exception = functools.partial(  # type: ignore[assignment]
                _MissingValue, obj=obj, name=name
            )


def distance(metres: float | int) -> str:
    """``812`` -> ``812米``; ``1234`` -> ``1.2公里``."""
    m = round(float(metres))
    if m < 1000:
        return f"{m}米"
    return f"{float(metres) / 1000:.1f}公里"


def radius_text(metres: float) -> str:
    """A search radius as people say it: ``5000`` -> ``5公里`` (not ``5.0公里``)."""
    if metres >= 1000 and metres % 1000 == 0:
        return f"{int(metres) // 1000}公里"
    return distance(metres)


def weekday_zh(day: str | int | date) -> str:
    """``wed`` -> ``周三``; also a date, or 0-6 counting from Monday."""
    if isinstance(day, date):
        return WEEKDAY_ZH[WEEKDAYS[day.weekday()]]
    if isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6:
        return WEEKDAY_ZH[WEEKDAYS[day]]
    if isinstance(day, str):
        if day.strip().lower() in WEEKDAY_ZH:
            return WEEKDAY_ZH[day.strip().lower()]
        if day in WEEKDAY_ZH.values():
            return day
    raise ValueError(f"weekday_zh: expected mon..sun, got {day!r}")


_DICT_ATTRIBUTES = frozenset(dir(dict))
# Attributes the sandbox would pass anyway, on every call, after the same checks: dict's
# read-only methods (templates write ``data.get("card", "…")``) and a loop's counters (not its
# items: ``loop.previtem`` may be anything, so it keeps the full check).
_SAFE_DICT_METHODS = frozenset({"get", "keys", "values", "items"})
_SAFE_LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"}
)


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with short ways to what a fan-out's templates touch on every group.

    Jinja looks ``x.name`` up as an attribute first and only then as an item; on a dict the
    attribute lookup fails (an exception per access) unless ``name`` is one of dict's own
    methods. Taking the item straight away when ``name`` is not one of them gives the very
    same answer without the exception, and items of a dict are values, which the sandbox never
    checks. ``data.get`` and ``loop.index`` are what the sandbox's own checks would let through
    (no underscore, not an internal attribute, not ``str.format``); the answer is the same, the
    checks are skipped. Everything else (objects, missing keys, other methods) goes the
    sandbox's way. Calls are still checked by the sandbox's ``call``.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is dict:
            if attribute not in _DICT_ATTRIBUTES:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            elif attribute in _SAFE_DICT_METHODS:
                return getattr(obj, attribute)
        elif kind is LoopContext and attribute in _SAFE_LOOP_ATTRIBUTES:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


class TemplateRenderer:
    """Renders templates by name; compiled templates are cached for the renderer's life.

    Build a new renderer when the templates change (one per ops data version).
    """

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._templates = dict(templates)
        self._env = _Sandbox(
            loader=FunctionLoader(self._source),
            undefined=_Undefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["distance"] = distance
        self._env.filters["weekday_zh"] = weekday_zh
        self._compiled: dict[str, Template] = {}
        # Each template's globals as one plain dict (Jinja keeps them as a ChainMap, which it
        # copies item by item on every render): contexts are merged onto it in one C call.
        self._globals: dict[str, dict[str, Any]] = {}

    def _source(self, name: str) -> tuple[str, str, Any] | None:
        if name not in self._templates:
            return None
        # The file name is the template name, so tracebacks show which template failed.
        return self._templates[name], name, lambda: True

    @property
    def names(self) -> list[str]:
        """Every template name, sorted."""
        return sorted(self._templates)

    @property
    def environment(self) -> SandboxedEnvironment:
        """The sandbox templates run in: its filters, tests and globals are what they may use."""
        return self._env

    def compile(self, name: str) -> Template:
        """The compiled template; raise :class:`TemplateRenderError` if missing or malformed."""
        if name not in self._compiled:
            try:
                self._compiled[name] = self._env.get_template(name)
            except TemplateSyntaxError as e:
                raise TemplateRenderError(
                    e.name or name, e.lineno or 0, f"template syntax error: {e.message}"
                ) from None
            except TemplateNotFound as e:
                raise TemplateRenderError(
                    name,
                    0,
                    f"template {e.name!r} not found" + _did_you_mean(str(e.name), self._templates),
                ) from None
        return self._compiled[name]

    def always_prints(self, name: str) -> bool:
        """True when template ``name`` writes some non-blank literal text whatever its context
        (text outside every ``{% if %}``, loop and block), so it can never render empty.

        A cheap test on the parsed template, so checks render group by group only the
        templates that may render nothing for some group. False when unsure.
        """
        try:
            root = self._env.parse(self._templates[name], name)
        except (KeyError, TemplateSyntaxError):
            return False
        if any(isinstance(n, nodes.Extends) for n in root.body):
            return False  # the parent decides what is written
        return any(
            isinstance(part, nodes.TemplateData) and part.data.strip()
            for out in root.body
            if isinstance(out, nodes.Output)
            for part in out.nodes
        )

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render template ``name`` with ``context``; the result has surrounding space stripped.

        Raises :class:`TemplateRenderError` naming the template, the line and what went wrong
        (an undefined variable or attribute, a forbidden operation, a bad filter argument).
        """
        template = self.compile(name)
        try:
            return self._render(name, template, context).strip()
        except TemplateRenderError:
            raise
        except TemplateSyntaxError as e:  # from an {% include %}d template
            raise TemplateRenderError(
                e.name or name, e.lineno or 0, f"template syntax error: {e.message}"
            ) from None
        except UndefinedError as e:
            where, line = self._failing_line(e, name)
            raise TemplateRenderError(
                where, line, self._undefined_message(e, where, line, context)
            ) from None
        except SecurityError as e:
            where, line = self._failing_line(e, name)
            raise TemplateRenderError(where, line, f"not allowed in templates: {e}") from None
        except TemplateNotFound as e:
            where, line = self._failing_line(e, name)
            raise TemplateRenderError(where, line, f"template {e.name!r} not found") from None
        except Exception as e:  # a filter given the wrong thing, a division by zero, ...
            where, line = self._failing_line(e, name)
            message = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            raise TemplateRenderError(where, line, message) from None

    def _render(self, name: str, template: Template, context: Mapping[str, Any]) -> str:
        """What ``template.render(context)`` does, without re-copying the globals each time."""
        base = self._globals.get(name)
        if base is None:
            base = self._globals[name] = dict(template.globals)
        try:
            # Template.new_context(shared=True), with the plain dict as the globals: the context
            # lists their names from it (the same names) instead of walking the ChainMap.
            env = self._env
            ctx = env.context_class(
                env, {**base, **context}, template.name, template.blocks, globals=base
            )
            return "".join(template.root_render_func(ctx))
        except Exception:
            # As Template.render: the traceback rewritten to the template's own lines.
            self._env.handle_exception()
            raise  # not reached: handle_exception raises

    def _failing_line(self, error: BaseException, name: str) -> tuple[str, int]:
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if frame.filename in self._templates:
                return frame.filename, frame.lineno or 0
        return name, 0

    def _undefined_message(
        self, error: UndefinedError, where: str, line: int, context: Mapping[str, Any]
    ) -> str:
        if not isinstance(error, _MissingValue):
            return str(error.message)
        if error.obj is missing:
            return f"undefined variable {error.name!r}" + _did_you_mean(str(error.name), context)
        keys = list(error.obj) if isinstance(error.obj, Mapping) else []
        hint = _did_you_mean(str(error.name), [str(k) for k in keys])
        owner = self._owner(where, line, error.name)
        if isinstance(error.name, str):
            return f"{owner} has no attribute {error.name!r}{hint}"
        return f"{owner} has no element {error.name!r}{hint}"

    def _owner(self, where: str, line: int, attribute: Any) -> str:
        """The expression written before ``.attribute`` on the failing line, e.g. ``'group'``."""
        lines = self._templates.get(where, "").splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        name = re.escape(str(attribute))
        owner = r"([A-Za-z_][\w.]*(?:\[[^\]]*\])?)"
        m = re.search(rf"{owner}\s*(?:\.{name}\b|\[\s*['\"]?{name}['\"]?\s*\])", text)
        return repr(m.group(1)) if m else "the value"


def _did_you_mean(word: str, choices: Any) -> str:
    return did_you_mean(word, [str(c) for c in choices])


# --- checking templates: every branch against context shapes, then a sample render ---------

_SAMPLE_GROUP = {
    "id": "sample-group",
    "name": "深圳南山科技园福利1群",
    "city": "深圳",
    "district": "南山区",
    "tags": ["office"],
}


def sample_context(
    campaign: Campaign, opsdata: OpsData, now: datetime, group_id: str | None = None
) -> dict[str, Any]:
    """A realistic context for ``campaign`` with every key the contract promises templates.

    ``group`` is the group ``group_id`` names, else the first group the campaign targets (a
    fictional one when none does); merchants, members and perks are fictional but shaped
    exactly like the real ones.
    """
    chosen = opsdata.groups.get(group_id) if group_id is not None else None
    targeted = [chosen] if chosen is not None else opsdata.target_groups(campaign)
    group = _SAMPLE_GROUP
    if targeted:
        g = targeted[0]
        group = {"id": g.id, "name": g.name, "city": g.city, "district": g.district}
        group["tags"] = list(g.tags)
    identity = {"id": campaign.id, "name": campaign.name, "kind": campaign.kind}
    sample = _sample(group, identity, dict(campaign.data), now)
    if campaign.kind == "lottery":
        sample["lottery"] = lottery_context(campaign.data, sample["now"])
    return sample


def _sample(
    group: dict[str, Any], campaign: dict[str, Any], data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "group": group,
        "campaign": campaign,
        "data": data,
        "now": now if now.tzinfo else now.replace(tzinfo=_SHANGHAI),
        "merchants": [
            {
                "id": "sample-noodles",
                "name": "老街牛肉面",
                "offer": "满30减10",
                "category": "午餐",
                "address": "科技园南路88号",
                "distance_m": 320,
            },
            {
                "id": "sample-coffee",
                "name": "街角咖啡",
                "offer": "第二杯半价",
                "category": "咖啡",
                "address": "高新南一道6号",
                "distance_m": 1240,
            },
        ],
        "members": [
            {"id": "sample-member-1", "name": "小王"},
            {"id": "sample-member-2", "name": "Lily 🌸"},
        ],
        "perks": [
            {
                "weekday": "每天",
                "time": "08:30",
                "name": "早安签到",
                "kind": "daily",
                "campaign": "sample-daily",
                "text": "每天 08:30 早安签到",
            },
            {
                "weekday": "周三",
                "time": "10:00",
                "name": "电影票半价",
                "kind": "weekly",
                "campaign": "sample-weekly",
                "text": "周三 10:00 电影票半价",
            },
        ],
    }


def context_shape(context: Mapping[str, Any], *, any_data: bool = False) -> Record:
    """The shape of a template context; ``any_data``: every ``data`` key is allowed."""
    shape = shape_of(context)
    assert isinstance(shape, Record)
    if not any_data:
        return shape
    return Record(tuple((k, ANYTHING if k == "data" else s) for k, s in shape.fields))


def _generic_shape(now: datetime) -> Record:
    """The context any campaign provides, whatever its data (for templates no campaign uses)."""
    identity = {"id": "sample", "name": "示例", "kind": "daily"}
    sample = _sample(_SAMPLE_GROUP, identity, {}, now)
    # A template nobody uses yet may be meant for a lottery: its own value is allowed too.
    sample["lottery"] = lottery_context({"keyword": "抽奖", "draw_at": "sun 20:00"}, now)
    return context_shape(sample, any_data=True)


def template_data_use(opsdata: OpsData, name: str, now: datetime) -> TemplateUse | None:
    """Which ``data`` keys template ``name`` reads (with what it includes); None if unknown."""
    checker = TemplateNames(TemplateRenderer(opsdata.templates).environment, opsdata.templates)
    if checker.parse(name) is None:
        return None
    return checker.check(name, _generic_shape(now))


def check_templates(opsdata: OpsData, now: datetime) -> list[Problem]:
    """Check every template on every branch, against the context of the campaigns using it.

    Each name, attribute, item, filter and test a template uses, in any branch, loop or macro,
    is checked against the shape of each campaign's context (once per template and distinct
    context shape, never per group); an unused template is checked against the context every
    campaign provides. Then each campaign's template is rendered with its sample context, for
    the failures only running finds (a filter given a wrong value). Each failure is a problem
    at the template file, line and column, naming the campaigns whose context lacks the name,
    e.g. ``templates/meal.j2:3:6: undefined variable 'merchnts' (did you mean 'merchants'?)
    (campaign lunch-deals)``.
    """
    base = opsdata.templates_dir or Path(".")
    renderer = TemplateRenderer(opsdata.templates)
    checker = TemplateNames(renderer.environment, opsdata.templates)
    failures: dict[tuple[str, int, int, str], list[str]] = {}

    def report(name: str, line: int, col: int, message: str, campaigns: list[str]) -> None:
        users = failures.setdefault((name, line, col, message), [])
        users += [c for c in campaigns if c not in users]

    for name in renderer.names:
        try:
            renderer.compile(name)
        except TemplateRenderError as e:
            report(e.name, e.line, 1, e.message, [])

    campaigns = sorted(opsdata.campaigns.values(), key=lambda c: c.id)
    samples = {
        c.id: sample_context(c, opsdata, now) for c in campaigns if c.template in renderer.names
    }
    by_shape: dict[tuple[str, Record], list[str]] = {}
    for campaign in campaigns:
        if campaign.id in samples:  # else the loader reports it at the campaign's `template:`
            key = (campaign.template, context_shape(samples[campaign.id]))
            by_shape.setdefault(key, []).append(campaign.id)
    found_at: set[tuple[str, int, str]] = set()
    endless: set[str] = set()  # campaigns whose templates always include each other
    for (name, shape), ids in by_shape.items():
        for p in checker.check(name, shape).problems:
            report(p.template, p.line, p.col, p.message, ids)
            found_at.update((p.template, p.line, c) for c in ids)
            if p.message.startswith(INCLUDE_LOOP):
                endless.update(ids)
    used = {c.template for c in campaigns}
    included = {r for n in renderer.names for r in checker.references(n)}
    for name in renderer.names:
        if name not in used and name not in included:
            for p in checker.check(name, _generic_shape(now)).problems:
                report(p.template, p.line, p.col, p.message, [])

    for campaign in campaigns:
        if campaign.id not in samples:
            continue
        if campaign.id in endless:  # rendering would only hit the recursion limit somewhere
            continue
        try:
            renderer.render(campaign.template, samples[campaign.id])
        except TemplateRenderError as e:
            if (e.name, e.line, campaign.id) not in found_at:  # the AST said it better already
                report(e.name, e.line, 1, e.message, [campaign.id])

    problems = []
    for (name, line, col, message), users in failures.items():
        if users:
            label = "campaign" if len(users) == 1 else "campaigns"
            message = f"{message} ({label} {', '.join(users)})"
        problems.append(Problem(base / name, max(line, 1), col, message))
    return sorted(problems, key=lambda p: (str(p.path), p.line, p.col, p.message))
