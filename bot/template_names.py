"""Which names a template uses, on every branch: a walk over Jinja's AST.

Rendering with a sample context only visits the branches that sample takes, so a typo inside an
``{% if %}`` it never enters would pass ``qunfu check`` and break in production. This walk reads
every branch, loop and macro of a template (and of the templates it includes, imports or
extends) and checks each variable, attribute, item, filter and test against the *shape* of the
context the campaigns using it provide: which variables exist, which keys each mapping has, what
a list holds. It runs once per template and distinct context shape, never per group.

Lookups guarded the way Jinja forgives them under ``StrictUndefined`` are not errors: the operand
of ``is defined`` / ``is undefined`` / ``|default(...)``, ``mapping.get('key', ...)``, and a name
used inside an ``{% if %}`` (or ``and``, or ``x if ... else y``) whose test says it is defined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, meta, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import LoopContext

from bot.opsdata.problems import did_you_mean
from bot.template_shapes import ANYTHING, Anything, ListOf, Record, Scalar, Shape, record, shape_of

# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameProblem:
    """A name, attribute, filter or test a template uses that will not exist when it runs."""

    template: str
    line: int
    col: int
    message: str


@dataclass
class TemplateUse:
    """What one walk found: problems, and which ``data`` keys the template reads.

    ``data_opaque`` is True when the template uses ``data`` as a whole (loops over it, passes
    it to a macro, looks a key up by a variable): then any key may be read.
    """

    problems: list[NameProblem] = field(default_factory=list)
    data_keys: set[str] = field(default_factory=set)
    data_opaque: bool = False


# Names Jinja itself provides in the places they are valid; the walk does not model where.
INCLUDE_LOOP = "templates include each other without end"
"""The start of the problem reported for templates that always include each other."""
_IMPLICIT = frozenset({"self", "super", "varargs", "kwargs", "caller"})
_FORGIVING_TESTS = frozenset({"defined", "undefined"})
_FORGIVING_FILTERS = frozenset({"default", "d"})
_SAME_LIST_FILTERS = frozenset(
    {"sort", "reverse", "list", "unique", "select", "reject", "selectattr", "rejectattr"}
)
_ITEM_FILTERS = frozenset({"first", "last", "random", "min", "max"})
_STR_FILTERS = frozenset(
    {"join", "string", "upper", "lower", "title", "capitalize", "trim", "format", "replace"}
    | {"truncate", "center", "indent", "wordwrap", "striptags", "escape", "e", "safe"}
)
_ATTRIBUTE_ARG_FILTERS = frozenset({"selectattr", "rejectattr", "groupby"})

_Path = tuple[Any, ...]


class TemplateNames:
    """Checks templates by name against context shapes; parses each template once."""

    def __init__(self, env: Environment, templates: Mapping[str, str]) -> None:
        self._env = env
        self._templates = templates
        self._parsed: dict[str, nodes.Template | None] = {}

    def parse(self, name: str) -> nodes.Template | None:
        """The template's AST; None when it is missing or does not parse (reported elsewhere)."""
        if name not in self._parsed:
            source = self._templates.get(name)
            try:
                self._parsed[name] = None if source is None else self._env.parse(source, name)
            except TemplateSyntaxError:
                self._parsed[name] = None
        return self._parsed[name]

    def references(self, name: str) -> set[str]:
        """Templates ``name`` includes, imports or extends by a literal name."""
        ast = self.parse(name)
        if ast is None:
            return set()
        return {r for r in meta.find_referenced_templates(ast) if isinstance(r, str)}

    def check(self, name: str, context: Record) -> TemplateUse:
        """Every lookup in template ``name`` (any branch) checked against ``context``."""
        walk = _Walk(self, context)
        walk.template(name, with_context=True)
        return walk.use

    def line(self, name: str, line: int) -> str:
        """One source line (1-based), or an empty string."""
        lines = self._templates.get(name, "").splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    @property
    def environment(self) -> Environment:
        """The Jinja environment whose filters, tests and globals templates may use."""
        return self._env

    @property
    def names(self) -> Sequence[str]:
        """Every template name."""
        return list(self._templates)


class _Walk:
    """One walk of a template and what it includes, with scopes and guards as it goes."""

    def __init__(self, owner: TemplateNames, context: Record) -> None:
        self._owner = owner
        self._env = owner.environment
        self._context = context
        self._scopes: list[dict[str, Shape]] = []
        self._stack: list[str] = []
        self._guards: frozenset[_Path] = frozenset()
        self._visits: dict[tuple[str, int, str], int] = {}
        self._conditional = 0  # > 0 inside a branch, loop or macro body
        self.use = TemplateUse()

    # --- templates and statements -----------------------------------------------------------

    def template(self, name: str, *, with_context: bool) -> None:
        """Walk template ``name``; one that is being walked already (a cycle) is skipped."""
        ast = self._owner.parse(name)
        if ast is None or name in self._stack:
            return
        saved = (self._scopes, self._context, self._guards)
        if not with_context:
            self._scopes, self._context, self._guards = [], record({}), frozenset()
        self._stack.append(name)
        try:
            with self._scope():
                self._stmts(ast.body)
        finally:
            self._stack.pop()
            self._scopes, self._context, self._guards = saved

    def _stmts(self, body: Iterable[nodes.Node]) -> None:
        macros: list[nodes.Macro] = []
        for node in body:
            if isinstance(node, nodes.Macro):
                self._bind(node.name, ANYTHING)
                self._exprs(node.defaults)
                macros.append(node)
            else:
                self._stmt(node)
        # A macro body runs when called, by then every name set around it exists.
        for macro in macros:
            with self._scope(conditional=True):
                for arg in macro.args:
                    self._bind(arg.name, ANYTHING)
                self._stmts(macro.body)

    def _stmt(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self._expr(child)
        elif isinstance(node, nodes.If):
            self._if(node)
        elif isinstance(node, nodes.For):
            self._for(node)
        elif isinstance(node, nodes.Assign):
            self._assign(node.target, self._expr(node.node))
        elif isinstance(node, nodes.AssignBlock):
            self._stmts(node.body)
            if node.filter is not None:
                self._filter(node.filter, Scalar(str))
            self._assign(node.target, Scalar(str))
        elif isinstance(node, nodes.With):
            shapes = [self._expr(v) for v in node.values]
            with self._scope():
                for target, shape in zip(node.targets, shapes, strict=False):
                    self._assign(target, shape)
                self._stmts(node.body)
        elif isinstance(node, nodes.CallBlock):
            self._expr(node.call)
            self._exprs(node.defaults)
            with self._scope(conditional=True):
                for arg in node.args:
                    self._bind(arg.name, ANYTHING)
                self._stmts(node.body)
        elif isinstance(node, nodes.FilterBlock):
            self._stmts(node.body)
            self._filter(node.filter, Scalar(str))
        elif isinstance(node, nodes.Include | nodes.Extends):
            self._include(node)
        elif isinstance(node, nodes.Import):
            self._bind(node.target, self._import(node.template, node.with_context))
        elif isinstance(node, nodes.FromImport):
            self._from_import(node)
        elif isinstance(node, nodes.Block | nodes.Scope | nodes.ScopedEvalContextModifier):
            with self._scope():
                self._stmts(node.body)
        elif isinstance(node, nodes.ExprStmt):
            self._expr(node.node)
        else:  # Continue, Break, EvalContextModifier, ... : walk whatever they hold
            self._children(node)

    def _if(self, node: nodes.If) -> None:
        self._expr(node.test)
        when_true, when_false = _guarded_by(node.test)
        with self._guarding(when_true):
            self._stmts(node.body)
        with self._guarding(when_false):
            if node.elif_:
                self._if(
                    nodes.If(node.elif_[0].test, node.elif_[0].body, node.elif_[1:], node.else_)
                )
            else:
                self._stmts(node.else_)

    def _for(self, node: nodes.For) -> None:
        iterable = self._expr(node.iter)
        item: Shape = ANYTHING
        if isinstance(iterable, ListOf):
            item = iterable.item
        elif isinstance(iterable, Record) or iterable == Scalar(str):
            item = Scalar(str)  # a mapping yields its keys, a string its characters
        with self._scope(conditional=True):
            self._assign(node.target, item)
            if node.test is not None:
                self._expr(node.test)
            self._bind("loop", Scalar(LoopContext))
            self._stmts(node.body)
        with self._guarding(frozenset()):
            self._stmts(node.else_)

    def _include(self, node: nodes.Include | nodes.Extends) -> None:
        names = _literal_names(node.template)
        if names is None:
            self._expr(node.template)
            return
        found = [n for n in names if n in self._owner.names]
        if not found:
            if not getattr(node, "ignore_missing", False):
                self._template_not_found(node, names[0])
            return
        if found[0] in self._stack and not self._conditional:
            # Always including itself never ends; inside an {% if %} it may be a bounded tree.
            chain = " -> ".join([*self._stack[self._stack.index(found[0]) :], found[0]])
            pattern = rf"(['\"]{re.escape(found[0])}['\"])"
            self._problem(node, pattern, f"{INCLUDE_LOOP}: {chain}")
            return
        self.template(found[0], with_context=getattr(node, "with_context", True))

    def _import(self, template: nodes.Expr, with_context: bool) -> Shape:
        names = _literal_names(template)
        if names is None:
            self._expr(template)
            return ANYTHING
        name = names[0]
        if name not in self._owner.names:
            self._template_not_found(template, name)
            return ANYTHING
        ast = self._owner.parse(name)
        self.template(name, with_context=with_context)
        if ast is None:
            return ANYTHING
        exported = {m.name: ANYTHING for m in ast.find_all(nodes.Macro)}
        for assign in ast.body:
            if isinstance(assign, nodes.Assign) and isinstance(assign.target, nodes.Name):
                exported[assign.target.name] = ANYTHING
        return record(exported, methods=None)

    def _from_import(self, node: nodes.FromImport) -> None:
        module = self._import(node.template, node.with_context)
        for entry in node.names:
            name, alias = entry if isinstance(entry, tuple) else (entry, entry)
            if isinstance(module, Record) and module.get(name) is None:
                template = (_literal_names(node.template) or ["?"])[0]
                self._problem(
                    node,
                    _name_pattern(name),
                    f"template {template!r} has no macro or variable {name!r}"
                    + did_you_mean(name, module.keys),
                )
            self._bind(alias, ANYTHING)

    # --- expressions ------------------------------------------------------------------------

    def _exprs(self, exprs: Iterable[nodes.Node | None]) -> None:
        for e in exprs:
            if e is not None:
                self._expr(e)

    def _expr(self, node: nodes.Node, *, lenient: bool = False, as_base: bool = False) -> Shape:
        if isinstance(node, nodes.Name):
            return self._name(node, lenient=lenient, as_base=as_base)
        if isinstance(node, nodes.Getattr):
            return self._lookup(node, node.node, node.attr, lenient=lenient)
        if isinstance(node, nodes.Getitem):
            return self._getitem(node, lenient=lenient)
        if isinstance(node, nodes.Call):
            return self._call(node)
        if isinstance(node, nodes.Filter):
            return self._filter(node, None)
        if isinstance(node, nodes.Test):
            return self._test(node)
        if isinstance(node, nodes.CondExpr):
            self._expr(node.test)
            when_true, when_false = _guarded_by(node.test)
            with self._guarding(when_true):
                self._expr(node.expr1)
            with self._guarding(when_false):
                if node.expr2 is not None:
                    self._expr(node.expr2)
            return ANYTHING
        if isinstance(node, nodes.And | nodes.Or):
            self._expr(node.left)
            when_true, when_false = _guarded_by(node.left)
            with self._guarding(when_true if isinstance(node, nodes.And) else when_false):
                self._expr(node.right)
            return ANYTHING
        if isinstance(node, nodes.Const):
            return shape_of(node.value)
        if isinstance(node, nodes.List):
            items = {self._expr(i) for i in node.items}
            return ListOf(items.pop() if len(items) == 1 else ANYTHING)
        if isinstance(node, nodes.Dict):
            shapes = {}
            for pair in node.items:
                value = self._expr(pair.value)
                key = pair.key
                if isinstance(key, nodes.Const) and isinstance(key.value, str):
                    shapes[key.value] = value
                else:
                    self._expr(key)
                    return ANYTHING
            return record(shapes)
        if isinstance(node, nodes.Concat):
            self._exprs(node.nodes)
            return Scalar(str)
        if isinstance(node, nodes.NSRef):
            self._name(nodes.Name(node.name, "load", lineno=node.lineno), lenient=False)
            return ANYTHING
        self._children(node)
        return ANYTHING

    def _children(self, node: nodes.Node) -> None:
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Expr):
                self._expr(child)
            else:
                self._stmt(child)

    def _name(self, node: nodes.Name, *, lenient: bool, as_base: bool = False) -> Shape:
        name = node.name
        index = self._visit(node, _name_pattern(name))
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        found = self._context.get(name)
        if found is not None:
            if name == "data" and not as_base:
                self.use.data_opaque = True
            return found
        if name in self._env.globals or name in _IMPLICIT:
            return ANYTHING
        if not (lenient or (name,) in self._guards):
            known = [n for s in self._scopes for n in s] + self._context.keys
            self._problem(
                node,
                _name_pattern(name),
                f"undefined variable {name!r}"
                + did_you_mean(name, known + list(self._env.globals)),
                index,
            )
        return ANYTHING

    def _is_data(self, node: nodes.Node) -> bool:
        """True for the bare name ``data`` meaning the campaign's data, not a local so named."""
        return (
            isinstance(node, nodes.Name)
            and node.name == "data"
            and not any("data" in s for s in self._scopes)
            and self._context.get("data") is not None
        )

    def _lookup(self, node: nodes.Expr, base_node: nodes.Node, key: Any, *, lenient: bool) -> Shape:
        base = self._expr(base_node, as_base=True)
        is_data = self._is_data(base_node)
        if is_data:
            field_ = base.get(str(key)) if isinstance(base, Record) else None
            if field_ is None and hasattr(dict, str(key)):
                self.use.data_opaque = True  # data.items(), data.values(): every key is read
            else:
                self.use.data_keys.add(str(key))
        path = _path(node)
        forgiven = lenient or (path is not None and path in self._guards)
        return self._member(node, base, key, forgiven=forgiven)

    def _member(self, node: nodes.Expr, base: Shape, key: Any, *, forgiven: bool) -> Shape:
        pattern = _member_pattern(node, key)
        index = self._visit(node, pattern)
        if isinstance(base, Anything):
            return ANYTHING
        owner = _text(node.node) if isinstance(node, nodes.Getattr | nodes.Getitem) else None
        label = repr(owner) if owner else "the value"
        if isinstance(key, str) and key.startswith("_"):
            self._problem(node, pattern, f"not allowed in templates: attribute {key!r}", index)
            return ANYTHING
        if isinstance(base, Record):
            found = base.get(str(key))
            if found is not None:
                return found
            if base.methods is not None and isinstance(key, str) and hasattr(base.methods, key):
                return ANYTHING
            choices = base.keys
            what = "attribute" if isinstance(node, nodes.Getattr) else "element"
        elif isinstance(base, ListOf):
            if isinstance(key, int):
                return base.item
            if isinstance(key, str) and hasattr(list, key):
                return ANYTHING
            if not forgiven:
                self._problem(
                    node,
                    pattern,
                    f"{label} is a list and has no attribute {key!r} "
                    f"(loop over it with {{% for ... in {owner or '...'} %}})",
                    index,
                )
            return ANYTHING
        elif isinstance(base, Scalar):
            if isinstance(key, int) and base.type is str:
                return Scalar(str)
            if isinstance(key, str) and hasattr(base.type, key):
                return ANYTHING
            choices = [a for a in dir(base.type) if not a.startswith("_")]
            what = "attribute" if isinstance(node, nodes.Getattr) else "element"
        else:
            return ANYTHING
        if not forgiven:
            hint = did_you_mean(str(key), choices)
            self._problem(node, pattern, f"{label} has no {what} {key!r}{hint}", index)
        return ANYTHING

    def _getitem(self, node: nodes.Getitem, *, lenient: bool) -> Shape:
        arg = node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str | int):
            return self._lookup(node, node.node, arg.value, lenient=lenient)
        base = self._expr(node.node)  # a key computed at run time: `data` is used as a whole
        self._expr(arg)
        if isinstance(arg, nodes.Slice):
            return base if isinstance(base, ListOf) or base == Scalar(str) else ANYTHING
        return base.item if isinstance(base, ListOf) else ANYTHING

    def _call(self, node: nodes.Call) -> Shape:
        callee = node.node
        self._exprs(node.args)
        self._exprs(k.value for k in node.kwargs)
        self._exprs([node.dyn_args, node.dyn_kwargs])
        first = node.args[0] if node.args else None
        if (
            isinstance(callee, nodes.Getattr)
            and callee.attr == "get"
            and isinstance(first, nodes.Const)
            and isinstance(first.value, str)
        ):
            # mapping.get('key', fallback) never fails: the key is read, and forgiven if absent
            base = self._expr(callee.node, as_base=True)
            if self._is_data(callee.node):
                self.use.data_keys.add(first.value)
            if isinstance(base, Record) and base.methods is dict:
                return base.get(first.value) or ANYTHING
            if isinstance(base, Anything):
                return ANYTHING
        self._expr(callee)
        return ANYTHING

    def _filter(self, node: nodes.Filter, operand: Shape | None) -> Shape:
        if node.node is not None:
            operand = self._expr(node.node, lenient=node.name in _FORGIVING_FILTERS)
        self._exprs(node.args)
        self._exprs(k.value for k in node.kwargs)
        self._exprs([node.dyn_args, node.dyn_kwargs])
        name = node.name
        pattern = rf"\|\s*({re.escape(name)})(?![A-Za-z0-9_])"
        index = self._visit(node, pattern)
        if name not in self._env.filters:
            self._problem(
                node,
                pattern,
                f"unknown filter {name!r}" + did_you_mean(name, self._env.filters),
                index,
            )
            return ANYTHING
        self._check_attribute_arg(node, operand)
        if name in _FORGIVING_FILTERS:
            return operand or ANYTHING
        if isinstance(operand, ListOf):
            if name in _SAME_LIST_FILTERS:
                return operand
            if name in _ITEM_FILTERS:
                return operand.item
        if name in _STR_FILTERS or name in ("distance", "weekday_zh"):
            return Scalar(str)
        if name in ("length", "count"):
            return Scalar(int)
        return ANYTHING

    def _check_attribute_arg(self, node: nodes.Filter, operand: Shape | None) -> None:
        """``merchants|map(attribute='nmae')``: the attribute named must exist on the items."""
        if not isinstance(operand, ListOf):
            return
        attribute = next((k.value for k in node.kwargs if k.key == "attribute"), None)
        if attribute is None and node.name in _ATTRIBUTE_ARG_FILTERS and node.args:
            attribute = node.args[0]
        if not (isinstance(attribute, nodes.Const) and isinstance(attribute.value, str)):
            return
        shape = operand.item
        for part in attribute.value.split("."):
            if not isinstance(shape, Record):
                return
            found = shape.get(part)
            if found is None:
                self._problem(
                    node,
                    rf"(['\"]{re.escape(attribute.value)}['\"])",
                    f"the items have no attribute {part!r}" + did_you_mean(part, shape.keys),
                )
                return
            shape = found

    def _test(self, node: nodes.Test) -> Shape:
        self._expr(node.node, lenient=node.name in _FORGIVING_TESTS)
        self._exprs(node.args)
        self._exprs(k.value for k in node.kwargs)
        pattern = rf"\bis\s+(?:not\s+)?({re.escape(node.name)})(?![A-Za-z0-9_])"
        index = self._visit(node, pattern)
        if node.name not in self._env.tests:
            message = f"unknown test {node.name!r}" + did_you_mean(node.name, self._env.tests)
            self._problem(node, pattern, message, index)
        return Scalar(bool)

    # --- scopes, guards and problems --------------------------------------------------------

    @contextmanager
    def _scope(self, *, conditional: bool = False) -> Iterator[None]:
        """A new scope for names; ``conditional``: its body may run zero times."""
        self._scopes.append({})
        self._conditional += conditional
        try:
            yield
        finally:
            self._conditional -= conditional
            self._scopes.pop()

    @contextmanager
    def _guarding(self, paths: frozenset[_Path]) -> Iterator[None]:
        """A branch: it may not run, and ``paths`` are known to be defined in it."""
        saved = self._guards
        self._guards = saved | paths
        self._conditional += 1
        try:
            yield
        finally:
            self._conditional -= 1
            self._guards = saved

    def _bind(self, name: str, shape: Shape) -> None:
        if not self._scopes:
            self._scopes.append({})
        self._scopes[-1][name] = shape

    def _assign(self, target: nodes.Node, shape: Shape) -> None:
        if isinstance(target, nodes.Name):
            self._visit(target, _name_pattern(target.name))  # keeps later columns in step
            self._bind(target.name, shape)
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self._assign(item, ANYTHING)
        elif isinstance(target, nodes.NSRef):
            self._name(nodes.Name(target.name, "load", lineno=target.lineno), lenient=False)

    def _template_not_found(self, node: nodes.Node, name: str) -> None:
        self._problem(
            node,
            rf"(['\"]{re.escape(name)}['\"])",
            f"template {name!r} not found" + did_you_mean(name, self._owner.names),
        )

    def _visit(self, node: nodes.Node, pattern: str) -> int:
        """How many lookups written as ``pattern`` this line had before ``node``'s."""
        key = (self._stack[-1], node.lineno or 1, pattern)
        self._visits[key] = self._visits.get(key, 0) + 1
        return self._visits[key] - 1

    def _problem(self, node: nodes.Node, pattern: str, message: str, index: int = 0) -> None:
        """A problem at ``node``'s line; the column is that of the ``index``-th ``pattern``."""
        where = self._stack[-1]
        line = node.lineno or 1
        found = list(re.finditer(pattern, self._owner.line(where, line)))
        m = found[index % len(found)] if found else None
        col = (m.start(m.lastindex or 0) + 1) if m else 1
        self.use.problems.append(NameProblem(where, line, col, message))


# --- helpers on nodes -----------------------------------------------------------------------


def _path(node: nodes.Node) -> _Path | None:
    """``data.x['y']`` -> ``('data', 'x', 'y')``; None for anything not a plain lookup chain."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _path(node.node)
        return None if base is None else (*base, node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _path(node.node)
        return None if base is None else (*base, node.arg.value)
    return None


def _text(node: nodes.Node) -> str | None:
    """A lookup chain as written, e.g. ``data.x`` or ``m['name']``."""
    path = _path(node)
    if path is None:
        return None
    text = str(path[0])
    for part in path[1:]:
        text += f".{part}" if isinstance(part, str) and part.isidentifier() else f"[{part!r}]"
    return text


def _guarded_by(test: nodes.Node) -> tuple[frozenset[_Path], frozenset[_Path]]:
    """The lookups known to be defined when ``test`` is true, and when it is false."""
    if isinstance(test, nodes.Test) and test.name in _FORGIVING_TESTS:
        path = _path(test.node)
        paths = frozenset() if path is None else frozenset({path})
        return (paths, frozenset()) if test.name == "defined" else (frozenset(), paths)
    if isinstance(test, nodes.Not):
        when_true, when_false = _guarded_by(test.node)
        return when_false, when_true
    if isinstance(test, nodes.And):
        lt, lf = _guarded_by(test.left)
        rt, rf = _guarded_by(test.right)
        return lt | rt, lf & rf
    if isinstance(test, nodes.Or):
        lt, lf = _guarded_by(test.left)
        rt, rf = _guarded_by(test.right)
        return lt & rt, lf | rf
    path = _path(test)  # `{% if x %}`: x was looked up (and checked) in the test itself
    return (frozenset() if path is None else frozenset({path})), frozenset()


def _literal_names(template: nodes.Node) -> list[str] | None:
    """The template name(s) an include names literally (a list means the first that exists)."""
    if isinstance(template, nodes.Const):
        value = template.value
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(value)
    if isinstance(template, nodes.List | nodes.Tuple) and all(
        isinstance(i, nodes.Const) and isinstance(i.value, str) for i in template.items
    ):
        return [i.value for i in template.items]  # type: ignore[attr-defined]
    return None


def _name_pattern(name: str) -> str:
    return rf"(?<![A-Za-z0-9_.'\"])({re.escape(name)})(?![A-Za-z0-9_])"


def _member_pattern(node: nodes.Node, key: Any) -> str:
    k = re.escape(str(key))
    if isinstance(node, nodes.Getattr):
        return rf"\.\s*({k})(?![A-Za-z0-9_])"
    return rf"\[\s*(['\"]?{k}['\"]?)\s*\]"
