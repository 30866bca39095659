"""Load on the entry API: POST /api/route against a trivial FastAPI endpoint served the same way.

    python bench/entry_load.py [--port 8765] [--groups 20000] [--runs 3] [--requests 3000]
                               [--seconds 20] [--concurrency 16]

Two servers, each ``uvicorn`` in a subprocess of its own on 127.0.0.1 with the same settings
(:func:`uvicorn_config`): the real web app (simulator gateway, a temp SQLite database, the shipped
campaigns plus ``--groups`` generated groups in a temp campaigns folder) on ``--port``, and a
trivial FastAPI app whose ``POST /api/route`` decodes the JSON body and answers a small JSON
object on ``--baseline-port`` (default ``--port`` + 1). A third process drives each in turn with
the same load generator (httpx, bounded concurrency, bounded request count and time): GPS points
around the groups, some addresses and district picks, every fifth request a second try with the
visit id of an earlier answer. Each run measures both; the figures are medians of ``--runs``
runs, and the ratio (real / trivial requests per second) is printed last. Loopback only; times
only, no assertions. The servers are stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
# Group centres (GCJ-02) in cities the shipped gazetteer knows; requests land around them.
CENTRES = [
    ("深圳", "南山区", 22.540, 113.934),
    ("深圳", "福田区", 22.543, 114.058),
    ("广州", "天河区", 23.129, 113.324),
    ("上海", "浦东新区", 31.230, 121.504),
]
ADDRESSES = ["深圳南山科技园", "广州天河珠江新城", "上海陆家嘴", "福田CBD"]


def uvicorn_config(app: Any, port: int) -> Any:
    """The one uvicorn configuration both servers run with (fair comparison)."""
    import uvicorn

    return uvicorn.Config(
        app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="off"
    )


# --- the campaigns folder with generated groups ------------------------------------------------


def write_campaigns(folder: Path, n_groups: int, seed: int = 11) -> Path:
    """The shipped campaigns folder plus ``n_groups`` generated groups in ``bench-groups.yaml``."""
    target = folder / "campaigns"
    shutil.copytree(ROOT / "campaigns", target)
    rng = random.Random(seed)
    lines = ["groups:"]
    for i in range(n_groups):
        city, district, lat, lon = CENTRES[i % len(CENTRES)]
        members = rng.choice([0, 40, 120, 260, 480, 499, 500, 500])  # about a quarter full
        lines.append(
            f"  - {{id: bench-{i:05d}, name: {city}福利{i}群, city: {city}, "
            f"district: {district}, location: {{lat: {lat + rng.gauss(0, 0.08):.5f}, "
            f"lon: {lon + rng.gauss(0, 0.08):.5f}, crs: gcj02}}, capacity: 500, "
            f"members: {members}}}"
        )
    (target / "bench-groups.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


# --- the two servers (run as `--serve real|trivial` in a subprocess) ----------------------------


def trivial_app() -> Any:
    """The baseline: FastAPI, one async endpoint that decodes the body and answers JSON."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/route")
    async def route(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"entry": "trivial", "channel": body.get("channel"), "groups": []})

    return app


def real_app(workdir: Path) -> Any:
    """The real web app on the simulator, a temp SQLite database and the generated groups."""
    from loguru import logger

    from bot.app import Qunfu, load_source
    from bot.config import settings_from_mapping
    from bot.gateways.simulator import SimulatorGateway
    from bot.web.app import create_app
    from scheduler.clock import RealClock

    logger.remove()  # the bench measures the API, not log formatting to a terminal
    settings = settings_from_mapping(
        {
            "campaigns_dir": str(workdir / "campaigns"),
            "templates_dir": str(ROOT / "templates"),
            "database": {"url": f"sqlite:///{workdir / 'bench.db'}"},
            "simulator": {"demo": None},
        },
        ROOT,
    )
    clock = RealClock()
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    return create_app(Qunfu(settings, clock, gateway, load_source(settings)))


def serve(kind: str, port: int, workdir: Path) -> None:
    """Serve one app until terminated."""
    import uvicorn

    app = trivial_app() if kind == "trivial" else real_app(workdir)
    uvicorn.Server(uvicorn_config(app, port)).run()


def start_server(kind: str, port: int, workdir: Path, timeout: float) -> subprocess.Popen[bytes]:
    """Start a server subprocess and wait until it answers ``/healthz``."""
    import httpx

    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--workdir", str(workdir)], cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the {kind} server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the {kind} server did not answer on port {port} within {timeout:.0f} s")


# --- the load generator (a process of its own) --------------------------------------------------


def bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """Route requests: GPS points near the groups, some addresses and district picks."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for k in range(n):
        city, district, lat, lon = rng.choice(CENTRES)
        if k % 10 == 8:
            out.append({"channel": "sms-alert", "address": rng.choice(ADDRESSES)})
        elif k % 10 == 9:
            out.append({"channel": "branch-poster", "city": city, "district": district})
        else:
            out.append(
                {
                    "channel": "wx-menu",
                    "lat": lat + rng.gauss(0, 0.05),
                    "lon": lon + rng.gauss(0, 0.05),
                    "crs": "gcj02",
                }
            )
    return out


def load(port: int, total: int, seconds: float, concurrency: int) -> dict[str, Any]:
    """Send up to ``total`` requests within ``seconds``, ``concurrency`` at a time."""
    import httpx

    work = bodies(total, 7)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    entries: dict[str, str] = {}  # channel -> the last visit id answered on it

    async def worker(client: httpx.AsyncClient, queue: asyncio.Queue[int], end: float) -> None:
        while time.perf_counter() < end:
            try:
                k = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = dict(work[k])
            if k % 5 == 4 and body["channel"] in entries:
                body["entry"] = entries[body["channel"]]  # a second try on the same page
            t = time.perf_counter()
            r = await client.post("/api/route", json=body)
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            entry = r.json().get("entry") if r.status_code == 200 else None
            if isinstance(entry, str) and entry != "trivial":
                entries[body["channel"]] = entry

    async def main() -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for k in range(total):
            queue.put_nowait(k)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}", limits=limits, timeout=30
        ) as client:
            for b in work[:20]:  # warm up: connections, first-use caches
                await client.post("/api/route", json=b)
            start = time.perf_counter()
            end = start + seconds
            await asyncio.gather(*(worker(client, queue, end) for _ in range(concurrency)))
            return time.perf_counter() - start

    elapsed = asyncio.run(main())
    lat = sorted(latencies)
    n = len(lat)
    return {
        "rps": n / elapsed,
        "p50_ms": statistics.median(lat) * 1000 if n else float("nan"),
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "requests": n,
        "statuses": statuses,
    }


def _load_child(port: int, total: int, seconds: float, concurrency: int, out: mp.Queue) -> None:
    out.put(load(port, total, seconds, concurrency))


def measure(port: int, args: argparse.Namespace) -> dict[str, Any]:
    """One load run against one server, from a separate process."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    child = ctx.Process(
        target=_load_child, args=(port, args.requests, args.seconds, args.concurrency, out)
    )
    child.start()
    try:
        return out.get(timeout=args.seconds + 120)  # type: ignore[no-any-return]
    finally:
        child.join(10)
        if child.is_alive():
            child.terminate()


def _line(name: str, r: dict[str, Any]) -> str:
    return (
        f"  {name:<22} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:7.1f} ms   "
        f"p99 {r['p99_ms']:7.1f} ms   {r['requests']} requests {json.dumps(r['statuses'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8765, help="the real app's port")
    parser.add_argument("--baseline-port", type=int, help="the trivial app's port (port + 1)")
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000, help="per run and server")
    parser.add_argument("--seconds", type=float, default=20.0, help="per run and server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--serve", choices=("real", "trivial"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workdir)
        return

    baseline_port = args.baseline_port or args.port + 1
    with tempfile.TemporaryDirectory(prefix="qunfu-entry-load-") as tmp:
        workdir = Path(tmp)
        write_campaigns(workdir, args.groups)
        servers: list[subprocess.Popen[bytes]] = []
        try:
            t = time.perf_counter()
            servers.append(start_server("real", args.port, workdir, args.start_timeout))
            ready_s = time.perf_counter() - t
            servers.append(start_server("trivial", baseline_port, workdir, args.start_timeout))
            runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for i in range(args.runs):
                trivial = measure(baseline_port, args)
                real = measure(args.port, args)
                runs.append((real, trivial))
                print(f"run {i + 1}/{args.runs}")
                print(_line("POST /api/route", real))
                print(_line("trivial endpoint", trivial))
        finally:
            for proc in servers:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def med(which: int, key: str) -> float:
        return statistics.median(r[which][key] for r in runs)

    print(
        f"entry API load: {args.groups} generated groups (real app ready after {ready_s:.1f} s), "
        f"concurrency {args.concurrency}, up to {args.requests} requests or {args.seconds:g} s "
        f"per run, loopback, load from a separate process; medians of {args.runs} runs"
    )
    for name, which in (("POST /api/route", 0), ("trivial endpoint", 1)):
        print(
            f"  {name:<22} {med(which, 'rps'):8.0f} req/s   p50 {med(which, 'p50_ms'):7.1f} ms"
            f"   p99 {med(which, 'p99_ms'):7.1f} ms"
        )
    ratios = [real["rps"] / trivial["rps"] for real, trivial in runs]
    ratio = statistics.median(ratios)
    print(f"ratio (requests/s, real / trivial, median of {args.runs} runs): {ratio:.2f}x")


if __name__ == "__main__":
    main()
