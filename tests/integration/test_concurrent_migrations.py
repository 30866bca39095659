"""Several `qunfu run` processes starting at once on one PostgreSQL database all migrate it:
one runs the migrations, the others wait for it and find the schema current (a race here
once crashed a process with a duplicate `alembic_version` table)."""

from __future__ import annotations

import os
import threading

import pytest

from db.session import current_revision, upgrade


@pytest.mark.postgres
def test_concurrent_upgrades_of_a_fresh_database_all_succeed(pg_cluster) -> None:  # noqa: ANN001
    name = f"migrate_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def migrate() -> None:
        start.wait()
        try:
            upgrade(url)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=migrate) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert current_revision(url) is not None
    finally:
        pg_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
