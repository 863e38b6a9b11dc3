"""MeshTransport against a plain httpx client and against the same client through nginx.

Run from the repository root (needs Debian's ``nginx``: ``apt-get install nginx-light``)::

    python benchmarks/bench_httpx.py            # PYTHONPATH=.:adapters if not installed

One nginx (one worker) serves four backends (``return 200``) and a proxy in front of them
(upstream keepalive). Cases, all against those backends in one run, interleaved in small
chunks (100 requests at concurrency 1, 320 at 16) so that load from other work on a shared
machine hits every case alike; each round sums its chunks, and the median round is reported:

* concurrency 1, sync: ``httpx.Client`` straight to one backend (the baseline), the same
  client through ``MeshTransport`` (a mesh hostname whose only endpoint is that backend),
  and the same client through the nginx proxy;
* concurrency 16, async: ``AsyncMeshTransport`` over the four endpoints, the same
  ``AsyncClient`` balancing by hand (round robin over the four URLs, one shared pool), and
  the same client through nginx.

Prints requests/s and p50 latency per case (medians over rounds) and the ratios that issue 4
sets targets for, twice: the ratio of those medians, and the median of the ratios taken
inside each round (cases of one round ran interleaved, so they saw the same load).
Bounded: ``ROUNDS`` × a fixed number of requests per case.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]

import httpx  # noqa: E402

import meshclient  # noqa: E402
from meshclient_httpx import AsyncMeshTransport, MeshTransport  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
SYNC_REQUESTS = 1500
SYNC_CHUNK = 100
ASYNC_REQUESTS = 3200
ASYNC_CHUNK = 320
CONCURRENCY = 16
HOST = "bench.mesh.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(tmp: pathlib.Path, backend_ports: list[int], proxy_port: int
                ) -> subprocess.Popen[bytes]:
    servers = "\n".join(
        f"  server {{ listen 127.0.0.1:{p}; location / {{ return 200 'ok'; }} }}"
        for p in backend_ports)
    upstream = "\n".join(f"    server 127.0.0.1:{p};" for p in backend_ports)
    conf = f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  upstream backends {{
{upstream}
    keepalive 64;
  }}
{servers}
  server {{
    listen 127.0.0.1:{proxy_port};
    location / {{
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""
    (tmp / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    for port in [*backend_ports, proxy_port]:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read()!r}"
                                       if proc.stderr else "nginx did not start") from None
                time.sleep(0.02)
    return proc


def mesh_for(ports: list[int]) -> meshclient.Mesh:
    slices = [{
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"bench-{i}", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "bench"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "targetRef": {"kind": "Pod",
                                                                 "name": f"bench-{i}"}}],
        "ports": [{"name": "http", "port": p}],
    } for i, p in enumerate(ports)]
    return meshclient.Mesh.from_objects([
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "gw", "namespace": "default"},
         "spec": {"gatewayClassName": "internal", "listeners": [
             {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.mesh.test"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench",
                                                             "namespace": "default"},
         "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}},
        *slices,
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "bench", "namespace": "default"},
         "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [HOST],
                  "rules": [{"backendRefs": [{"name": "bench", "port": 8080}]}]}},
    ])


Result = tuple[float, float]  # (requests per second, p50 seconds)
Chunk = tuple[float, int, list[float]]  # (elapsed seconds, requests, latencies)


def run_sync(client: httpx.Client, url: str, n: int) -> Chunk:
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        a = time.perf_counter()
        client.get(url)
        lat.append(time.perf_counter() - a)
    return time.perf_counter() - t0, n, lat


async def run_async(client: httpx.AsyncClient, urls: Callable[[], str], n: int) -> Chunk:
    lat: list[float] = []
    per = n // CONCURRENCY

    async def worker() -> None:
        for _ in range(per):
            a = time.perf_counter()
            await client.get(urls())
            lat.append(time.perf_counter() - a)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0, per * CONCURRENCY, lat


def summed(chunks: list[Chunk]) -> Result:
    elapsed = sum(c[0] for c in chunks)
    return sum(c[1] for c in chunks) / elapsed, statistics.median(
        [x for c in chunks for x in c[2]])


def median_of(results: list[Result]) -> Result:
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results))


def bench_sync(ports: list[int], proxy: int) -> dict[str, list[Result]]:
    mesh = mesh_for(ports[:1])
    direct = httpx.Client()
    meshed = httpx.Client(transport=MeshTransport(mesh))
    proxied = httpx.Client()
    cases: dict[str, tuple[httpx.Client, str]] = {
        "httpx direct": (direct, f"http://127.0.0.1:{ports[0]}/"),
        "MeshTransport": (meshed, f"http://{HOST}/"),
        "httpx via nginx": (proxied, f"http://127.0.0.1:{proxy}/"),
    }
    out: dict[str, list[Result]] = {k: [] for k in cases}
    for c, url in cases.values():
        run_sync(c, url, 200)  # warm up connections and caches
    for _ in range(ROUNDS):
        chunks: dict[str, list[Chunk]] = {k: [] for k in cases}
        for _ in range(SYNC_REQUESTS // SYNC_CHUNK):
            for name, (c, url) in cases.items():
                chunks[name].append(run_sync(c, url, SYNC_CHUNK))
        for name, got in chunks.items():
            out[name].append(summed(got))
    for c, _ in cases.values():
        c.close()
    return out


async def bench_async(ports: list[int], proxy: int) -> dict[str, list[Result]]:
    mesh = mesh_for(ports)
    by_hand = httpx.AsyncClient()
    meshed = httpx.AsyncClient(transport=AsyncMeshTransport(mesh))
    proxied = httpx.AsyncClient()
    rr = itertools.cycle([f"http://127.0.0.1:{p}/" for p in ports])
    cases: dict[str, tuple[httpx.AsyncClient, Callable[[], str]]] = {
        "AsyncClient by hand (4 URLs)": (by_hand, rr.__next__),
        "AsyncMeshTransport (4 endpoints)": (meshed, lambda: f"http://{HOST}/"),
        "AsyncClient via nginx": (proxied, lambda: f"http://127.0.0.1:{proxy}/"),
    }
    out: dict[str, list[Result]] = {k: [] for k in cases}
    for c, urls in cases.values():
        await run_async(c, urls, 400)
    for _ in range(ROUNDS):
        chunks: dict[str, list[Chunk]] = {k: [] for k in cases}
        for _ in range(ASYNC_REQUESTS // ASYNC_CHUNK):
            for name, (c, urls) in cases.items():
                chunks[name].append(await run_async(c, urls, ASYNC_CHUNK))
        for name, got in chunks.items():
            out[name].append(summed(got))
    closing: list[Awaitable[Any]] = [c.aclose() for c, _ in cases.values()]
    await asyncio.gather(*closing)
    return out


def show(title: str, rounds: dict[str, list[Result]]) -> None:
    print(title)
    for name, results in rounds.items():
        rps, p50 = median_of(results)
        print(f"  {name:34} {rps:8.0f} req/s   p50 {p50 * 1e6:7.0f} µs")


def ratios(rounds: dict[str, list[Result]], a: str, b: str, field: int) -> tuple[float, float]:
    """``a``/``b`` of one field: the ratio of the medians, and the median of per-round ratios.

    The second pairs cases measured in the same round (their chunks interleaved), so load
    that comes and goes between rounds cancels out of it.
    """
    of_medians = median_of(rounds[a])[field] / median_of(rounds[b])[field]
    paired = statistics.median(x[field] / y[field]
                               for x, y in zip(rounds[a], rounds[b], strict=True))
    return of_medians, paired


def main() -> int:
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        print("nginx not found: apt-get install nginx-light", file=sys.stderr)
        return 2
    ports = [free_port() for _ in range(4)]
    proxy = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-httpx-") as tmp:
        proc = start_nginx(pathlib.Path(tmp), ports, proxy)
        try:
            sync = bench_sync(ports, proxy)
            show(f"concurrency 1, sync, {SYNC_REQUESTS} requests × {ROUNDS} rounds", sync)
            conc = asyncio.run(bench_async(ports, proxy))
            show(f"concurrency {CONCURRENCY}, async, {ASYNC_REQUESTS} requests × {ROUNDS} "
                 "rounds", conc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    lines = [
        ("c=1  MeshTransport throughput / direct", sync, "MeshTransport", "httpx direct", 0,
         "≥ 0.95"),
        ("c=1  MeshTransport p50 / direct", sync, "MeshTransport", "httpx direct", 1, "≤ 1.05"),
        ("c=1  nginx throughput / direct", sync, "httpx via nginx", "httpx direct", 0, ""),
        ("c=1  nginx p50 / direct", sync, "httpx via nginx", "httpx direct", 1, ""),
        ("c=16 AsyncMeshTransport / by hand", conc, "AsyncMeshTransport (4 endpoints)",
         "AsyncClient by hand (4 URLs)", 0, "≥ 0.95"),
        ("c=16 AsyncMeshTransport / via nginx", conc, "AsyncMeshTransport (4 endpoints)",
         "AsyncClient via nginx", 0, "≥ 1.8"),
    ]
    print(f"ratios{'of medians':>44}{'per round':>11}")
    for label, rounds, a, b, field, target in lines:
        of_medians, paired = ratios(rounds, a, b, field)
        goal = f"   (target {target})" if target else ""
        print(f"  {label:40} {of_medians:8.3f} {paired:10.3f}{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
