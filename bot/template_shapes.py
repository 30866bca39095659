"""Shapes: what a template context value is known to look like, for checking templates.

A shape says which keys a mapping has, what a list holds and which Python type a scalar is, so
a template can be checked against every campaign's context without rendering it per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Shape:
    """What a context value is known to look like."""


@dataclass(frozen=True)
class Anything(Shape):
    """Nothing is known (a filter's result, an imported macro's): every lookup on it passes."""


ANYTHING = Anything()


@dataclass(frozen=True)
class Scalar(Shape):
    """A value of one Python type (str, int, datetime, ...); its attributes are the type's."""

    type: type


@dataclass(frozen=True)
class Record(Shape):
    """A mapping with known keys; ``methods`` is the type whose methods it also has (dict)."""

    fields: tuple[tuple[str, Shape], ...]
    methods: type | None = dict

    def get(self, key: str) -> Shape | None:
        """The shape under ``key``, or None when the mapping has no such key."""
        return next((s for k, s in self.fields if k == key), None)

    @property
    def keys(self) -> list[str]:
        """The known keys."""
        return [k for k, _ in self.fields]


@dataclass(frozen=True)
class ListOf(Shape):
    """A list whose items all look like ``item``."""

    item: Shape


def shape_of(value: Any) -> Shape:
    """The shape of a plain value: dicts become records, lists of alike items ``ListOf``."""
    if isinstance(value, Mapping):
        pairs = sorted(((str(k), shape_of(v)) for k, v in value.items()), key=lambda kv: kv[0])
        return Record(tuple(pairs))
    if isinstance(value, list | tuple):
        items = {shape_of(v) for v in value}
        return ListOf(items.pop() if len(items) == 1 else ANYTHING)
    if value is None:
        return ANYTHING
    return Scalar(type(value))


def record(fields: Mapping[str, Shape], methods: type | None = dict) -> Record:
    """A record from a mapping of key to shape."""
    return Record(tuple(sorted(fields.items(), key=lambda kv: kv[0])), methods)
