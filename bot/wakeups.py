"""Waking the other ``qunfu run`` processes when there is something new to send (PostgreSQL).

A process sleeps until its next due instant, at most 30 s of the bot's clock. When another
process queues sends (it won a campaign occurrence's fan-out, say) for accounts this one holds,
this one used to learn of them only when that sleep ended: in the scale-out benchmark half the
accounts started a push 30 s late. Now an enqueue on PostgreSQL sends ``NOTIFY`` on
:data:`CHANNEL` in its own transaction (delivered when it commits), and each process listens on
a connection of its own in a thread and wakes its loop. SQLite runs one process: nothing to do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from loguru import logger
from sqlalchemy import Engine

CHANNEL = "qunfu_outbox"
_NOTIFY = sa.text(f"NOTIFY {CHANNEL}")


def notify(connection: sa.Connection) -> None:
    """Tell listening processes, when the current transaction commits, that sends were queued.

    PostgreSQL folds identical notifications of one transaction into one; a no-op elsewhere.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY)


class Listener:
    """Calls ``wake()`` from its own thread each time another process notifies :data:`CHANNEL`.

    ``start()`` returns once the connection listens. A lost connection is opened again after a
    pause; ``stop()`` ends the thread within ``poll`` seconds.
    """

    def __init__(self, engine: Engine, wake: Callable[[], object], *, poll: float = 1.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("listening for other processes needs PostgreSQL")
        # The driver's own connection string (password included), not a pooled connection:
        # LISTEN holds the connection for the process's life.
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._wake = wake
        self._poll = poll
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start listening (in a thread); returns when the first LISTEN is in place or failed."""
        self._thread = threading.Thread(target=self._run, name="qunfu-listen", daemon=True)
        self._thread.start()
        self._listening.wait(timeout=10)

    def stop(self) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll + 5)

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    pause = 1.0
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=self._poll, stop_after=1):
                            self._wake()
            except Exception as exc:  # safe: the loop still wakes at its own horizon meanwhile
                self._listening.set()
                logger.opt(exception=exc).warning(
                    "listening for other processes failed; again in {:.0f} s: {}", pause, exc
                )
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
