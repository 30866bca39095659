"""Load on the entry API: POST /api/route from a second process over loopback.

    python bench/entry_load.py [--requests 2000] [--seconds 30] [--concurrency 16]

Starts the web app (uvicorn, 127.0.0.1, an ephemeral port) in this process on the simulator
gateway with a temp SQLite database and the shipped campaigns; a child process sends route
requests (GPS points around the sample cities, a few addresses and district picks) until the
count or the time bound is reached, and reports requests per second, p50 and p99 latency and
the status codes. Times only, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CENTRES = [(22.543, 114.058), (22.540, 113.934), (23.129, 113.264), (31.230, 121.474)]


def _serve(port_box: list[int], ready: threading.Event, stop: threading.Event) -> None:
    import uvicorn
    from loguru import logger

    from bot.app import Qunfu, load_source
    from bot.config import settings_from_mapping
    from bot.gateways.simulator import SimulatorGateway
    from bot.web.app import create_app
    from scheduler.clock import SHANGHAI, VirtualClock

    logger.remove()
    tmp = tempfile.mkdtemp(prefix="qunfu-bench-")
    settings = settings_from_mapping({"simulator": {"demo": None}}, ROOT)
    clock = VirtualClock(datetime(2026, 12, 1, 10, tzinfo=SHANGHAI))
    gateway = SimulatorGateway(clock, settings.bot.id, settings.bot.name)
    bot = Qunfu(
        settings, clock, gateway, load_source(settings), database_url=f"sqlite:///{tmp}/bench.db"
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port_box.append(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(bot), log_level="warning", lifespan="off", access_log=False)
    )

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.should_exit = True
        await task

    asyncio.run(main())
    bot.close()


def _bodies(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        if k % 10 == 8:
            out.append(
                {
                    "channel": "sms-alert",
                    "address": rng.choice(
                        ["深圳南山科技园", "广州天河珠江新城", "上海陆家嘴", "福田CBD"]
                    ),
                }
            )
        elif k % 10 == 9:
            out.append({"channel": "branch-poster", "city": "深圳", "district": "南山区"})
        else:
            lat, lon = rng.choice(CENTRES)
            out.append(
                {
                    "channel": "wx-menu",
                    "lat": lat + rng.gauss(0, 0.03),
                    "lon": lon + rng.gauss(0, 0.03),
                    "crs": "wgs84",
                }
            )
    return out


def _client(port: int, total: int, seconds: float, concurrency: int, out: mp.Queue) -> None:
    import httpx

    bodies = _bodies(total, 7)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient, queue: asyncio.Queue, deadline: float) -> None:
        while time.perf_counter() < deadline:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t = time.perf_counter()
            r = await client.post("/api/route", json=body)
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async def main() -> float:
        queue: asyncio.Queue = asyncio.Queue()
        for b in bodies:
            queue.put_nowait(b)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:
            await client.post("/api/route", json=bodies[0])  # warm up
            start = time.perf_counter()
            deadline = start + seconds
            await asyncio.gather(*(worker(client, queue, deadline) for _ in range(concurrency)))
            return time.perf_counter() - start

    elapsed = asyncio.run(main())
    out.put({"elapsed": elapsed, "latencies": latencies, "statuses": statuses})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    port_box: list[int] = []
    ready, stop = threading.Event(), threading.Event()
    server = threading.Thread(target=_serve, args=(port_box, ready, stop), daemon=True)
    server.start()
    if not ready.wait(60):
        raise SystemExit("the web app did not start within 60 s")
    out: mp.Queue = mp.get_context("spawn").Queue()
    client = mp.get_context("spawn").Process(
        target=_client, args=(port_box[0], args.requests, args.seconds, args.concurrency, out)
    )
    client.start()
    result = out.get(timeout=args.seconds + 120)
    client.join()
    stop.set()
    server.join(10)

    lat = sorted(result["latencies"])
    n = len(lat)
    p99 = lat[min(n - 1, int(n * 0.99))] if n else float("nan")
    print(
        f"entry API load: POST /api/route, {n} requests in {result['elapsed']:.2f} s, "
        f"concurrency {args.concurrency}, loopback, second process"
    )
    print(f"  requests/s  {n / result['elapsed']:.0f}")
    print(f"  p50         {statistics.median(lat) * 1000:.1f} ms" if n else "  p50 -")
    print(f"  p99         {p99 * 1000:.1f} ms")
    print(f"  statuses    {json.dumps(result['statuses'])}")


if __name__ == "__main__":
    main()
