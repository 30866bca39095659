"""FastAPI application factory; served beside the bot by ``qunfu run``.

Routers live in their own modules (one idea each) and reach the running bot through
``request.app.state.bot``; nothing here holds domain logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.app import Qunfu


def plain_page(title: str, body: str) -> str:
    """A small Chinese page in the entry page's style; ``body`` is HTML, escaped by the caller."""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/join/static/entry.css"></head>
<body><main class="entry"><h1>{title}</h1>
{body}
</main></body></html>
"""


def error_page(title: str, message: str) -> str:
    """:func:`plain_page` saying what went wrong (``message`` is plain text)."""
    return plain_page(title, f'<p class="error" role="alert">{html.escape(message)}</p>')


def wants_html(request: Request) -> bool:
    """Whether a browser asks (a person opening a link), not an app or ``<img>``."""
    return "text/html" in request.headers.get("accept", "")


NOT_FOUND_HTML = error_page("页面不存在", "您打开的链接不完整或已失效，请从银行官方入口重新打开。")


async def _not_found_page(request: Request, exc: Exception) -> Response:
    """A person who opens a broken link in a browser gets a Chinese page, not JSON; API
    clients (``/api/*``) and everything that does not ask for HTML keep the JSON error."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and wants_html(request) and not request.url.path.startswith("/api/"):
        return HTMLResponse(NOT_FOUND_HTML, status_code=404)
    return await http_exception_handler(request, exc)


def create_app(bot: Qunfu) -> FastAPI:
    """The web app for one running bot."""
    app = FastAPI(title="群福 Qunfu", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.bot = bot
    app.add_exception_handler(StarletteHTTPException, _not_found_page)

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness for probes: yes/no flags and the backlog, nothing more.

        This app also serves the public entry page, so the gateway's endpoint and its last
        error (which may name hosts) stay in the logs, not here.
        """
        b: Qunfu = request.app.state.bot
        health = getattr(b.gateway, "health", None)
        detail = health() if callable(health) else {}
        ready = b.gateway.ready() if callable(getattr(b.gateway, "ready", None)) else True
        return {
            "ok": True,
            "gateway": {
                "ready": bool(ready),
                "connected": bool(detail.get("connected", ready)),
                "logged_in": bool(detail.get("logged_in", ready)),
                "reconnects": int(detail.get("reconnects", 0)),
            },
            # A database read: in a worker thread, so a probe never waits on the loop's work.
            "outbox": {"pending": await asyncio.to_thread(b.outbox.pending_count)},
        }

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        """The address people open first: the simulator page when the bot runs on the
        simulator, else the entry page (which explains that a link needs its channel)."""
        from bot.gateways.simulator import SimulatorGateway

        on_simulator = isinstance(request.app.state.bot.gateway, SimulatorGateway)
        return RedirectResponse("/sim" if on_simulator else "/join", status_code=307)

    for module_name in (
        "bot.web.entry",
        "bot.web.simulator_page",
        "bot.web.webhooks",
        "bot.web.referral_qr",
    ):
        with contextlib.suppress(ModuleNotFoundError):
            module = __import__(module_name, fromlist=["router"])
            app.include_router(module.router)
    return app


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for the web app, bound now so a busy port is a plain error at start
    (uvicorn would exit the whole process from inside the event loop instead)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"the web app cannot listen on {host}:{port} ({exc.strerror}); is another "
            "`qunfu run` using it? Change web.port in config.yaml, or set web.enabled: false",
        ) from None
    sock.set_inheritable(True)
    return sock


async def serve(
    bot: Qunfu,
    sock: socket.socket,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve the web app on ``sock`` (from :func:`listen`) until ``stop`` is set; ``on_ready``
    runs once it accepts connections (so a URL printed then opens at once)."""
    import uvicorn

    config = uvicorn.Config(create_app(bot), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done() and not stop.is_set():
        await asyncio.sleep(0.05)
    if server.started and on_ready is not None:
        on_ready()
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    await task
