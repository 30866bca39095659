"""``qunfu run``: the live bot with its gateway, hot reload, and on the simulator a demo and a
terminal console."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console
from watchfiles import awatch

from bot.app import Qunfu, load_source
from bot.config import Settings
from bot.console import TerminalConsole
from bot.gateways.simulator import SimulatorGateway, UnknownPeer
from bot.leases import DatabaseInUse, hold_database
from bot.logs import follow_clock, setup_logging
from bot.simulation import (
    Scenario,
    action_record,
    add_staff_contacts,
    apply_people_step,
    load_scenario,
)
from scheduler.clock import Clock, RealClock, ScaledClock, aware


async def run_bot(settings: Settings) -> None:
    """Run until interrupted.

    A SQLite database takes one process: a second ``qunfu run`` on it stops here, before
    anything is touched (PostgreSQL takes any number, sharing the accounts by leases).
    """
    demo = settings.gateway != "wechaty" and settings.simulator.demo is not None
    try:
        lock = hold_database(demo_database_url(settings) if demo else settings.database.url)
    except DatabaseInUse as exc:
        raise SystemExit(f"cannot start: {exc}") from None
    try:
        await _run_bot(settings)
    finally:
        if lock is not None:
            lock.release()


async def _run_bot(settings: Settings) -> None:
    log_file = (
        Path(settings.database.url.removeprefix("sqlite:///")).parent / "qunfu.log"
        if settings.database.url.startswith("sqlite:///")
        else None
    )
    setup_logging(settings.log_level, console_level="WARNING", json_file=log_file)
    source = load_source(settings)
    if settings.gateway == "wechaty":
        await _run_wechaty(settings, source)
    else:
        await _run_simulator(settings, source)


async def _run_simulator(settings: Settings, source) -> None:  # noqa: ANN001
    sock = _listen(settings) if settings.web.enabled else None  # a busy port stops us first
    demo = None
    if settings.simulator.demo is not None:
        demo, _ = load_scenario(settings.simulator.demo)
    clock = (
        ScaledClock(aware(demo.start), settings.simulator.speed)
        if demo
        else simulated_clock(settings)
    )
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    for account in settings.bot_accounts():  # each account a simulated bot
        gateway.add_account(account.id, account.name)
    follow_clock(clock)  # log lines in the simulated world's time, as the console shows
    console = TerminalConsole(gateway)
    db_url = settings.database.url
    if demo is not None:
        # The simulated world lives in memory, so a demo starts from a fresh database too.
        db_url = demo_database_url(settings)
        demo_db = Path(db_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(demo_db) + suffix).unlink(missing_ok=True)
    bot = Qunfu(settings, clock, gateway, source, database_url=db_url)
    for group in bot.planner().ops.groups.values():
        gateway.add_room(group.id, group.name)
    restored = restore_rooms(gateway, bot)
    # The managers and ops contacts the bot writes to (escalations, alerts) are people of this
    # world from the start; the database's names for them, when they are members, stay.
    add_staff_contacts(gateway, bot)
    gateway.on_action(lambda sent: console.show_action(action_record(sent)))
    out = console.out
    out.print(
        f"[bold]群福 Qunfu[/bold] on the simulator · {len(gateway.rooms)} groups · "
        f"{len(bot.planner().scheduled_campaigns())} scheduled campaigns · "
        f"clock ×{settings.simulator.speed:g} from {clock.now():%Y-%m-%d %H:%M}"
    )
    out.print(
        f"database: {shown_database(db_url)}"
        + (
            " (a demo run starts it afresh; `qunfu outbox status --demo` and "
            "`qunfu funnel --demo` read it)"
            if demo is not None
            else " (database.url; `qunfu outbox status` and `qunfu funnel` read it)"
        ),
        markup=False,
        soft_wrap=True,
    )
    if restored > EAGER_RESTORE_LIMIT:
        out.print(
            f"[dim]{restored:,} people are in groups (from the database); each group reads "
            "its members when first used[/dim]"
        )
    out.print("[dim]type `help` for commands; Ctrl-C to stop[/dim]")
    stop = asyncio.Event()
    _install_signals(stop)
    # Stopped gracefully (they watch `stop`): the bot loop and the web server.
    graceful = [asyncio.create_task(bot.run_forever(stop))]
    # Nothing to finish (a watcher, a demo step, a wait for typing): cancelled at once.
    tasks = [
        asyncio.create_task(
            _watch(bot, settings, stop, on_reload=lambda: add_staff_contacts(gateway, bot))
        )
    ]
    # The demo starts once the banner is whole, its URLs included.
    web_ready = asyncio.Event()
    if settings.web.enabled:
        from bot.web.app import serve

        assert sock is not None
        base = _web_base(settings.web.host, settings.web.port)

        def announce() -> None:
            _print_web_urls(out, base, bot)
            web_ready.set()

        graceful.append(asyncio.create_task(serve(bot, sock, stop, on_ready=announce)))
    if demo is not None:
        if not settings.web.enabled:
            web_ready.set()
        tasks.append(
            asyncio.create_task(_play_demo(demo, gateway, console, clock, settings, web_ready))
        )
    if settings.simulator.console:
        tasks.append(asyncio.create_task(_read_commands(console, stop)))
    try:
        await stop.wait()
    finally:
        stop.set()
        await _wind_down(graceful, tasks)
        bot.close()
        out.print("[dim]stopped; unsent messages stay in the outbox for the next run[/dim]")


def simulated_clock(settings: Settings) -> Clock:
    """The simulator's clock without a demo: real time, or ``simulator.speed`` times faster
    from ``simulator.start`` (which it read at the real instant ``simulator.started``, so
    processes and restarts given the same pair share one simulated time)."""
    sim = settings.simulator
    if sim.start is None:
        return ScaledClock(RealClock().now(), sim.speed) if sim.speed != 1 else RealClock()
    real_now = RealClock().now()
    since = real_now - aware(sim.started) if sim.started is not None else timedelta(0)
    return ScaledClock(aware(sim.start) + since * sim.speed, sim.speed)


_STOP_GRACE_S = 1.0


async def _wind_down(graceful: list[asyncio.Task[None]], rest: list[asyncio.Task[None]]) -> None:
    """Cancel ``rest`` now; give ``graceful`` (which have seen ``stop``) a moment to finish,
    then cancel what is still running.

    The bot loop finishes the send in hand (a send cut off mid-call would have to be marked
    ``uncertain``); the grace is short so that Ctrl-C stops within two seconds.
    """
    for t in rest:
        t.cancel()
    _done, running = await asyncio.wait(graceful, timeout=_STOP_GRACE_S)
    for t in running:
        t.cancel()
    await asyncio.gather(*rest, *running, return_exceptions=True)


def _print_web_urls(out: Console, base: str, bot: Qunfu) -> None:
    """The URLs a newcomer can open, one a line and never wrapped; every one answers 200."""
    out.print(
        f"[bold green]模拟器页面 simulator page: {base}/sim[/bold green]  "
        "(open it in a browser to play cardholders)",
        soft_wrap=True,
    )
    out.print(f"web: {base}/  (leads to the simulator page)", markup=False, soft_wrap=True)
    channels = [c for c in bot.ops.channels.values() if c.enabled and not c.referral]
    if channels:
        out.print(
            f"entry page: {base}/join?channel={channels[0].id}  "
            "(one link per channel in channels.yaml)",
            markup=False,
            soft_wrap=True,
        )
    out.print(f"health: {base}/healthz", markup=False, soft_wrap=True)


def demo_database_url(settings: Settings) -> str:
    """The database a demo run writes (afresh each time): ``demo.db`` beside the configured
    SQLite file, or ``var/demo.db`` beside config.yaml when the configured one is a server."""
    url = settings.database.url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return f"sqlite:///{Path(url.removeprefix('sqlite:///')).with_name('demo.db')}"
    return f"sqlite:///{(settings.base_dir / 'var' / 'demo.db').resolve()}"


def shown_database(url: str) -> str:
    """A database URL as people should read it: a SQLite file relative to the working folder
    when it is below it, any other URL without its password."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///"))
        with contextlib.suppress(ValueError):
            path = path.relative_to(Path.cwd())
        return str(path)
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: say nothing that might be a secret
        return url.split("://", 1)[0] + "://…"


# Up to this many open memberships are read back whole at start, so the console and the page
# show every restored member at once; past it (a bank's million cost gigabytes and a minute
# read whole) each room reads its own members when first used.
EAGER_RESTORE_LIMIT = 20_000


def restore_rooms(
    gateway: SimulatorGateway, bot: Qunfu, eager_limit: int = EAGER_RESTORE_LIMIT
) -> int:
    """Put the people the database says are in each group back into the simulated rooms.

    The simulated world lives in memory; without this a restart would make everyone a newcomer
    again. Up to ``eager_limit`` open memberships are streamed in now (plain rows, a batch at a
    time); more than that and every room reads its own when first used
    (:meth:`SimulatorGateway.restore_lazily`). Returns how many open memberships there are.
    """
    memberships = bot.memberships
    total = memberships.count_current()
    if total > eager_limit:
        gateway.restore_lazily(memberships)
        return total
    restored = 0
    for group_id, person_id, name in memberships.stream_current():
        room = gateway.rooms.get(group_id)
        if room is not None:
            gateway.add_contact(person_id, name)
            room.members.add(person_id)
            restored += 1
    return restored


async def _run_wechaty(settings: Settings, source) -> None:  # noqa: ANN001
    from bot.gateways.wechaty import WechatyGateway

    gateway: Any
    try:
        if settings.accounts:  # one puppet-service connection per account (docs/deployment.md)
            from bot.gateways.accounts import MultiAccountGateway

            gateway = MultiAccountGateway.from_env(settings, os.environ)
        else:
            gateway = WechatyGateway.from_env(settings)
    except ValueError as exc:
        raise SystemExit(f"cannot start the Wechaty gateway: {exc}") from None
    sock = _listen(settings) if settings.web.enabled else None  # a busy port stops us first
    bot: Qunfu | None = None
    if settings.accounts:
        # Connect only the accounts this process holds (its leases on PostgreSQL; all alone).
        bot = Qunfu(settings, RealClock(), gateway, source)
        gateway.follow(bot.accounts.local_accounts)
    await gateway.start()
    login: asyncio.Task[None] | None = None
    if bot is not None:
        # Many accounts: the loop starts at once, logged in or not. An account that cannot log
        # in (a refused token) is the health watch's: marked down, ops told, its sends wait;
        # the others send, and this process keeps its leases live and its share of the work
        # going rather than waiting on a login that may never come.
        login = asyncio.create_task(
            wait_for_login(gateway, settings.wechaty.login_timeout.total_seconds())
        )
    else:
        await wait_for_login(gateway, settings.wechaty.login_timeout.total_seconds())
    if bot is None:
        # Mentions and echoes are recognised by the account the service logged in as.
        settings.bot.id = gateway.bot_id or settings.bot.id
        bot = Qunfu(settings, RealClock(), gateway, source)
    # Images are fetched and scanned for QR codes only where moderation could act on them.
    gateway.scan_images_when(bot.may_moderate)
    stop = asyncio.Event()
    _install_signals(stop)
    watcher = asyncio.create_task(_watch(bot, settings, stop))
    web = None
    if sock is not None:
        from bot.web.app import serve

        web = asyncio.create_task(serve(bot, sock, stop))
    try:
        await bot.run_forever(stop)
    finally:
        watcher.cancel()
        if login is not None:
            login.cancel()
        if web is not None:
            stop.set()
            with contextlib.suppress(Exception):
                await web
        await gateway.stop()
        bot.close()


def _listen(settings: Settings) -> socket.socket:
    """The web app's socket; a port in use stops the start with a plain message."""
    from bot.web.app import listen

    try:
        return listen(settings.web.host, settings.web.port)
    except OSError as exc:
        raise SystemExit(f"cannot start: {exc.strerror or exc}") from None


def _web_base(host: str, port: int) -> str:
    """The URL to open: a wildcard bind address is reached through loopback."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}"


async def wait_for_login(gateway, every: float) -> None:  # noqa: ANN001
    """Wait until the gateway is logged in, saying so in the log every ``every`` seconds.

    The gateway itself retries with backoff and logs why it cannot connect (wrong token,
    unreachable endpoint); this only makes sure a waiting bot is never silent.
    """
    while True:
        try:
            await gateway.wait_logged_in(every)
            logger.bind(**gateway.health()).info("wechaty gateway logged in")
            return
        except TimeoutError:
            logger.bind(**gateway.health()).warning(
                "still waiting for the puppet service to log in (endpoint and token from "
                "WECHATY_PUPPET_SERVICE_ENDPOINT / WECHATY_PUPPET_SERVICE_TOKEN)"
            )


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _watch(
    bot: Qunfu,
    settings: Settings,
    stop: asyncio.Event,
    on_reload: Callable[[], None] | None = None,
) -> None:
    """Reload ops data when a campaign, data file or template changes; ``on_reload`` runs
    after each accepted reload (the simulator meets managers added by it)."""
    folders = [p for p in (settings.campaigns_dir, settings.templates_dir) if p.exists()]
    async for _changes in awatch(*folders, stop_event=stop, debounce=400):
        problems = await bot.reload_async()  # parsed and indexed off the loop
        if problems:
            print("ops data rejected; the last good version stays live:", file=sys.stderr)
            for p in problems:
                print("  " + p, file=sys.stderr)
        else:
            print("ops data reloaded", file=sys.stderr)
            if on_reload is not None:
                on_reload()


async def _play_demo(
    demo: Scenario,
    gateway: SimulatorGateway,
    console: TerminalConsole,
    clock: Clock,
    settings: Settings,
    start_after: asyncio.Event,
) -> None:
    """Play the demo scenario's steps at the scaled clock's pace, once ``start_after`` is set
    (or a few seconds have passed: a web server that cannot start must not hold the demo)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(start_after.wait(), timeout=10)
    for step in demo.steps:
        if step.advance is not None:
            await asyncio.sleep(step.advance.total_seconds() / settings.simulator.speed)
            continue
        if step.until is not None:
            delay = (aware(step.until) - clock.now()).total_seconds() / settings.simulator.speed
            await asyncio.sleep(max(0.0, delay))
            continue
        try:
            said = apply_people_step(gateway, step)
        except (UnknownPeer, ValueError) as exc:
            logger.warning("demo step rejected: {}", exc)
            continue
        if said:
            console.show_input(f"{clock.now():%H:%M}", said)
    console.out.print("[dim]demo finished; the bot keeps running. Type `help` for commands.[/dim]")


async def _read_commands(console: TerminalConsole, stop: asyncio.Event) -> None:
    """Typed commands from stdin; EOF ends input but not the bot."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    # A daemon thread, not the loop's executor: asyncio.run() waits for executor threads, and a
    # thread parked in a read of the terminal would keep the process alive after Ctrl-C.
    threading.Thread(
        target=_pump_stdin, args=(loop, lines), name="qunfu-console", daemon=True
    ).start()
    while not stop.is_set():
        line = await lines.get()
        if line is None:
            return
        if line.strip() in ("quit", "exit"):
            stop.set()
            return
        reply = console.command(line)
        if reply:
            console.out.print(reply, markup=False)


def _pump_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Hand each line typed on stdin to the loop; None at end of input.

    Reads the raw descriptor with ``os.read``: a daemon thread parked inside ``sys.stdin``'s
    buffered reader holds that reader's lock, and interpreter shutdown aborts when it cannot
    take it.
    """

    def post(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, item)
        except RuntimeError:  # the loop is closed: the bot has stopped
            return False
        return True

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # no usable stdin (closed, replaced)
        post(None)
        return
    decoder = codecs.getincrementaldecoder(sys.stdin.encoding or "utf-8")("replace")
    pending = ""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        pending += decoder.decode(chunk, final=not chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            if not post(line + "\n"):
                return
        if not chunk:
            if pending:
                post(pending)
            post(None)
            return
