"""Shared fixtures: a real PostgreSQL server for the session, and database URLs per test.

``pg_url`` starts a throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port. As root the
server runs as the ``postgres`` system user (PostgreSQL refuses to run as root). If it cannot
start, tests that need it are skipped, or fail when ``CI=true``.

``db_url`` runs a test once on SQLite (a file in tmp_path) and once on its own fresh PostgreSQL
database.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.session import make_engine, upgrade

PG_USER = "qunfu"
_db_numbers = itertools.count(1)


def _pg_bindir() -> Path | None:
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))
        except (subprocess.SubprocessError, OSError):
            pass
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb") or "").parent)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL needed in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


class _Cluster:
    def __init__(self, bindir: Path, root: Path, run_as: str | None) -> None:
        self.bindir, self.root, self.run_as = bindir, root, run_as
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def start(self) -> str:
        init = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-500:]}")
        opts = (
            f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        start = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
            timeout=90,
        )
        if start.returncode != 0:
            log = self.log.read_text(errors="replace")[-1000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()} {log}")
        self._wait_ready()
        self.execute("CREATE DATABASE qunfu")
        return self.url("qunfu")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=PG_USER,
                    dbname="postgres",
                    connect_timeout=2,
                ):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return "postgres"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[_Cluster]:
    """A running PostgreSQL server for the whole test session."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
    assert bindir is not None
    run_as = _run_as()
    if os.geteuid() == 0 and run_as is None:
        _unavailable("running as root and there is no 'postgres' user to run the server")
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="qunfu-pg-"))
    os.chmod(root, 0o700)
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = _Cluster(bindir, root, run_as)
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError, ImportError) as exc:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(str(exc))
    except Exception as exc:  # psycopg.OperationalError and friends
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"{type(exc).__name__}: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_cluster: _Cluster) -> str:
    """``postgresql+psycopg://qunfu@127.0.0.1:PORT/qunfu`` on the session's server."""
    return pg_cluster.url("qunfu")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables yet): a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qunfu.db'}"
        return
    cluster: _Cluster = request.getfixturevalue("pg_cluster")
    name = f"t{os.getpid()}_{next(_db_numbers)}"
    cluster.execute(f"CREATE DATABASE {name}")
    try:
        yield cluster.url(name)
    finally:
        cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on :func:`db_url` with every migration applied (SQLite and PostgreSQL)."""
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
