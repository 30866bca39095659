"""Bounded alias expansion for YAML read from files people edit.

An alias (``*name``) repeats the part of the file its anchor (``&name``) marks. Nested aliases
multiply: a few hundred bytes can stand for millions of values ("billion laughs"), and turning
them into plain data then takes minutes and all the memory there is. The composer below counts,
as it meets each alias, how many values that alias stands for once expanded, and stops with an
error at the alias that takes the file past the limit. A file with no aliases pays nothing.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

# Values that aliases may add to a file, at least; a larger file may add as many as it has
# bytes (merges such as `<<: *defaults` in every item of a long directory stay well inside).
ALIAS_EXPANSION_LIMIT = 100_000
# Nesting deeper than this is no ops file; the limit keeps a crafted file from exhausting the
# stack of the recursive steps that turn a document into plain data.
MAX_DEPTH = 200


class BoundedYAML(YAML):
    """ruamel's round-trip reader (it remembers positions) with bounded aliases and depth.

    ``size`` is the length of the text about to be read: aliases may add
    ``max(ALIAS_EXPANSION_LIMIT, size)`` values.
    """

    def __init__(self, size: int = 0) -> None:
        super().__init__(typ="rt")
        self.Composer = BoundedComposer
        self.max_depth = MAX_DEPTH
        self.alias_limit = max(ALIAS_EXPANSION_LIMIT, size)


class AliasExpansionError(MarkedYAMLError):
    """Aliases expand past the limit, or an alias sits inside the part its anchor marks."""


class BoundedComposer(Composer):
    """A ruamel composer that refuses alias expansion past ``loader.alias_limit`` values."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def return_alias(self, a: Any) -> Any:
        """Called by ruamel for each alias (only): count what it stands for, refuse past the
        limit. Nodes that are not aliases pay nothing."""
        event = self.parser.last_event  # the alias just read, for its position
        if isinstance(a, (MappingNode, SequenceNode)) and a.end_mark is None:
            # Its anchor is still open: the alias would make an endless structure.
            raise AliasExpansionError(
                None,
                None,
                f"alias *{event.anchor} is inside the part its anchor &{event.anchor} marks",
                event.start_mark,
            )
        self._expanded += self._size(a)
        limit = getattr(self.loader, "alias_limit", ALIAS_EXPANSION_LIMIT)
        if self._expanded > limit:
            raise AliasExpansionError(
                None,
                None,
                f"aliases expand past {limit:,} values (alias *{event.anchor})",
                event.start_mark,
            )
        return a

    def _size(self, node: Node) -> int:
        """How many values ``node`` stands for with every alias inside it expanded."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, MappingNode):
            for key, value in node.value:
                size += self._size(key) + self._size(value)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                size += self._size(item)
        self._sizes[id(node)] = size
        return size
