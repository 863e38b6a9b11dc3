"""Per-call overhead of ``mesh_channel`` against a plain grpc channel to the same server.

Run from the repository root::

    python benchmarks/bench_grpc.py            # PYTHONPATH=.:adapters if not installed

One grpcio server on loopback (bytes in, bytes out; a unary echo and a three-message server
stream) and, in one run, the same calls over: a plain ``grpc.insecure_channel`` to its
address; a mesh channel to a Service with that one endpoint and no routes; a mesh channel
through a GRPCRoute with an Exact method match and a header match; and the aio twins of the
first and last. Each case runs a warm-up batch, then ``ROUNDS`` batches of ``BATCH`` calls
in turn with the other cases (so a burst of load on the shared machine hits all of them),
and reports the median and the fastest batch's time per call. The server is in the same
process, so the absolute numbers include its work too: read the differences and ratios. A
last row times the mesh layer alone, without I/O: deciding, picking, building the attempt
and reporting it (``Router.begin``, ``next_attempt``, ``finish``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]

import grpc  # noqa: E402
import grpc.aio  # noqa: E402

from meshclient import Mesh  # noqa: E402
from meshclient_grpc import aio_mesh_channel, mesh_channel  # noqa: E402

ROUNDS = 15
BATCH = 200
HOST = "127.0.0.1"
METHOD = "/bench.Echo/Unary"
STREAM = "/bench.Echo/Stream"


def serve() -> tuple[grpc.Server, int]:
    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from (request, request, request)

    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    return server, port


def manifests(port: int, *, routed: bool) -> list[dict[str, Any]]:
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "echo", "namespace": "bench"},
           "spec": {"clusterIP": "10.96.0.10",
                    "ports": [{"name": "grpc", "port": 9000, "targetPort": port}]}}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "echo-1", "namespace": "bench",
                        "labels": {"kubernetes.io/service-name": "echo"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": [HOST], "conditions": {"ready": True}}],
           "ports": [{"name": "grpc", "port": port}]}
    out: list[dict[str, Any]] = [svc, eps]
    if routed:
        out.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "echo", "namespace": "bench"},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "echo",
                                     "port": 9000}],
                     "rules": [{"matches": [{"method": {"service": "bench.Echo",
                                                        "method": "Unary"},
                                             "headers": [{"name": "x-tenant",
                                                          "value": "a"}]}],
                                "backendRefs": [{"name": "echo", "port": 9000}]},
                               {"backendRefs": [{"name": "echo", "port": 9000}]}]},
        })
    return out


def timed_sync(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    for _ in range(BATCH):
        fn()
    return (time.perf_counter() - t0) / BATCH


def main() -> None:
    server, port = serve()
    md = (("x-tenant", "a"),)
    plain = grpc.insecure_channel(f"{HOST}:{port}")
    direct = mesh_channel(Mesh.from_objects(manifests(port, routed=False)),
                          "grpc://echo.bench:9000")
    routed = mesh_channel(Mesh.from_objects(manifests(port, routed=True)),
                          "grpc://echo.bench:9000")

    def unary(ch: grpc.Channel) -> Callable[[], object]:
        mc = ch.unary_unary(METHOD)
        return lambda: mc(b"x", timeout=5, metadata=md)

    def stream(ch: grpc.Channel) -> Callable[[], object]:
        mc = ch.unary_stream(STREAM)
        return lambda: list(mc(b"x", timeout=5, metadata=md))

    cases: dict[str, Callable[[], object]] = {
        "plain channel, unary": unary(plain),
        "mesh, Service without routes, unary": unary(direct),
        "mesh, GRPCRoute method+header, unary": unary(routed),
        "plain channel, server stream (3 msgs)": stream(plain),
        "mesh, GRPCRoute, server stream (3 msgs)": stream(routed),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        timed_sync(fn)  # warm-up: connections, multicallables
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            results[name].append(timed_sync(fn))

    router = routed._router

    def layer() -> None:
        state = router.begin(METHOD, md, 5.0)
        state.next_attempt()  # type: ignore[union-attr]
        state.finish(grpc.StatusCode.OK, "")  # type: ignore[union-attr]

    layer_times = []
    for _ in range(ROUNDS):
        layer_times.append(timed_sync(layer))
    aio_results = asyncio.run(aio_cases(port, md))
    results.update(aio_results)
    plain.close()
    direct.close()
    routed.close()
    server.stop(None)

    base = {"unary": statistics.median(results["plain channel, unary"]),
            "stream": statistics.median(results["plain channel, server stream (3 msgs)"]),
            "aio": statistics.median(results["aio plain channel, unary"])}
    print(f"{'case':<44} {'median µs':>10} {'min µs':>8} {'overhead µs':>12} {'ratio':>6}")
    for name, times in results.items():
        med = statistics.median(times)
        ref = base["aio"] if name.startswith("aio") else (
            base["stream"] if "stream" in name else base["unary"])
        print(f"{name:<44} {med * 1e6:>10.1f} {min(times) * 1e6:>8.1f} "
              f"{(med - ref) * 1e6:>12.1f} {med / ref:>6.2f}")
    print(f"{'mesh layer alone (no I/O), routed unary':<44} "
          f"{statistics.median(layer_times) * 1e6:>10.1f} {min(layer_times) * 1e6:>8.1f}")


async def aio_cases(port: int, md: tuple[tuple[str, str], ...]) -> dict[str, list[float]]:
    plain = grpc.aio.insecure_channel(f"{HOST}:{port}")
    routed = aio_mesh_channel(Mesh.from_objects(manifests(port, routed=True)),
                              "grpc://echo.bench:9000")

    def unary(ch: grpc.aio.Channel) -> Callable[[], Awaitable[object]]:
        mc = ch.unary_unary(METHOD)
        return lambda: mc(b"x", timeout=5, metadata=md)

    cases = {"aio plain channel, unary": unary(plain),
             "aio mesh, GRPCRoute method+header, unary": unary(routed)}

    async def timed(fn: Callable[[], Awaitable[object]]) -> float:
        t0 = time.perf_counter()
        for _ in range(BATCH):
            await fn()
        return (time.perf_counter() - t0) / BATCH

    results: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        await timed(fn)
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            results[name].append(await timed(fn))
    await plain.close()
    await routed.close()
    return results


if __name__ == "__main__":
    main()
