"""Engines, sessions and schema upgrades.

SQLite (the default) runs in WAL mode with foreign keys enforced and a busy timeout, so a second
process (``qunfu preview`` while the bot runs) waits instead of failing. PostgreSQL goes through
psycopg 3. The schema is Alembic's job: :func:`upgrade` brings any database to the newest
revision and is safe to call at every start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000

SessionFactory = Callable[[], Session]


def normalise_url(url: str) -> str:
    """Spell PostgreSQL URLs with the psycopg 3 driver; leave everything else alone."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql[+psycopg]://...``)."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, class_=Session, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations (works from any cwd)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # configparser interpolation: a literal % (e.g. in a password) must be doubled.
        cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(target: str | Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on a URL or an engine; a no-op when up to date."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        cfg = alembic_config()
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several `qunfu run` processes start at once: one migrates, the others wait
                # here and then find the schema current (the lock ends with the transaction).
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7318245001)")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        if isinstance(target, str):
            engine.dispose()


def current_revision(target: str | Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if isinstance(target, str):
            engine.dispose()
