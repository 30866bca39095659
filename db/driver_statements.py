"""Core statements compiled once per dialect and run on the driver's cursor.

A path that runs a few small statements per request thousands of times a second (the referral
webhook) spends more in SQLAlchemy's per-execution work (cache key lookup, parameter
processing, result objects) than in the statements themselves. A :class:`DriverStatement`
keeps what the compiler produced once — the SQL text in the driver's placeholder style, the
parameter order, each column type's own bind and result conversion — and runs it on the DBAPI
cursor of a connection whose transaction SQLAlchemy still owns (begin, commit and rollback are
unchanged). Statements stay written in Core, so they are checked against the models, and the
conversions (aware UTC datetimes, booleans on SQLite) are the same as SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


class DriverStatement:
    """One statement compiled for one dialect, executable on a DBAPI cursor."""

    def __init__(
        self,
        stmt: sa.Executable,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = stmt.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
        )
        self.sql: str = compiled.string
        positions = compiled.positiontup
        self.positional = positions is not None
        names = list(positions) if positions is not None else list(compiled.binds)
        self.names: tuple[str, ...] = tuple(names)
        binds = compiled.binds
        if any(binds[n].expanding for n in names):
            raise ValueError("expanding (IN) parameters are not supported on the driver path")
        self.defaults: dict[str, Any] = {n: binds[n].value for n in names}
        self.binds: tuple[Processor, ...] = tuple(
            binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names
        )
        columns = getattr(stmt, "exported_columns", None) or ()
        self.results: tuple[Processor, ...] = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )

    def params(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values`` (by bind name), converted by column type."""
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = values[name] if name in values else self.defaults[name]
            out.append(value if process is None or value is None else process(value))
        if self.positional:
            return out
        return dict(zip(self.names, out, strict=True))

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Result rows with each column's result conversion applied."""
        procs = self.results
        if not any(procs):
            return [tuple(r) for r in raw]
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))
            for r in raw
        ]


class DriverStatements:
    """Lazily compiled :class:`DriverStatement` s for one dialect, by name."""

    def __init__(self, build: Mapping[str, tuple[sa.Executable, Sequence[str] | None]]) -> None:
        self._build = build
        self._cache: dict[tuple[str, str], DriverStatement] = {}

    def get(self, name: str, dialect: Dialect) -> DriverStatement:
        """The statement ``name`` compiled for ``dialect`` (compiled on first use)."""
        key = (name, dialect.name)
        found = self._cache.get(key)
        if found is None:
            stmt, keys = self._build[name]
            found = self._cache[key] = DriverStatement(stmt, dialect, keys)
        return found


class DriverCursor:
    """Runs :class:`DriverStatement` s inside ``conn``'s open transaction."""

    def __init__(self, conn: Connection, statements: DriverStatements) -> None:
        self.dialect = conn.dialect
        self._statements = statements
        self._cursor = conn.connection.cursor()

    def execute(self, name: str, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement; its result rows (empty for one that returns none)."""
        stmt = self._statements.get(name, self.dialect)
        cursor = self._cursor
        cursor.execute(stmt.sql, stmt.params(values))
        if cursor.description is None:
            return []
        return stmt.rows(cursor.fetchall())

    def execute_many(self, name: str, values: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement (returning nothing) for each set of ``values``."""
        if values:
            stmt = self._statements.get(name, self.dialect)
            self._cursor.executemany(stmt.sql, [stmt.params(v) for v in values])

    def close(self) -> None:
        """Release the driver cursor (the connection and its transaction stay open)."""
        self._cursor.close()
