"""Kubernetes source benchmarks: initial sync at scale, and one change to a new table.

Run from the repository root with the dev install: ``python benchmarks/bench_kubernetes.py``
(``--routes 10000 --endpoints 50000 --trials 15``). Numbers go to ``benchmarks/README.md``.

The test suite's fake API server runs in a child process (so the memory measured is the
client's alone) with the routing benchmark's routes and Services plus EndpointSlices of five
endpoints each, and serves them over loopback HTTP to the real kubernetes-asyncio client in
``Mesh.connect_kubernetes``. Measured in this process:

* initial sync: from ``connect_kubernetes`` to ready (lists, parse, one compile), and the
  resident memory it added (VmRSS after, minus before; VmHWM for the peak);
* one change to a new table: the server changes one object; the clock runs from the
  command to the moment the mesh's refresh listener has the new state (routing table for a
  route, balancer for an endpoint). Medians of ``--trials``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import attrs

from benchmarks.bench_routing import manifests
from meshclient import Mesh
from meshclient.sources import DEFAULT_KINDS, KubeOptions
from meshclient.store import Snapshot, Store


@attrs.define(eq=False)
class _TimedStore(Store):
    """Remembers when each snapshot version was published (the source's part of a change)."""

    published: dict[int, float] = attrs.field(factory=dict, kw_only=True)

    def _publish(self, changed: Any, *, errors_changed: bool) -> Snapshot:
        snapshot = super()._publish(changed, errors_changed=errors_changed)
        self.published[snapshot.version] = time.perf_counter()
        return snapshot


def _slice(i: int, ns: str, per: int, version: int = 0) -> dict[str, Any]:
    def address(e: int) -> str:
        n = i * per + e + version * 100_003  # a new version moves every address
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"svc{i}-abc", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": f"svc{i}"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address(e)], "conditions": {"ready": True},
                       "nodeName": f"node{e}"} for e in range(per)],
        "ports": [{"name": "http", "port": 8080}],
    }


def _serve(conn: Connection, routes: int, endpoints: int) -> None:
    from tests.sources.kube.apiserver import FakeApiServer

    api = FakeApiServer(DEFAULT_KINDS).start()
    raw = manifests(routes, random.Random(routes))
    per = max(1, endpoints // routes)
    for obj in raw:
        api.apply(obj)
    for i in range(routes):
        api.apply(_slice(i, f"team{i % 50}", per))
    conn.send(api.url)
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            api.close()
            return
        conn.send(api.apply(arg)["metadata"]["resourceVersion"])


def _rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace) -> None:
    from kubernetes_asyncio import client

    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=_serve, args=(child, args.routes, args.endpoints), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    url = parent.recv()
    print(f"fake API server loaded {args.routes:,} routes in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    cfg = client.Configuration(host=url)
    options = KubeOptions(page_size=args.page_size, debounce=args.debounce,
                          max_delay=max(0.2, args.debounce * 4))
    rss0 = _rss_kb()
    t0 = time.perf_counter()
    store = _TimedStore()
    mesh = await Mesh.connect_kubernetes(configuration=cfg, options=options, timeout=600,
                                         store=store)
    sync_s = time.perf_counter() - t0
    rss1, hwm = _rss_kb(), _rss_kb("VmHWM")
    balancer = mesh.balancer(rand=random.Random(1).random)
    slices = sum(len(s.endpoints) for s in mesh.snapshot.of("EndpointSlice").values())  # type: ignore[union-attr]
    print(f"initial sync: {sync_s:.2f} s; {len(mesh.snapshot.of('HTTPRoute')):,} routes, "
          f"{slices:,} endpoints; RSS +{(rss1 - rss0) / 1024:.0f} MB (peak {hwm / 1024:.0f} MB "
          f"process total)")

    seen = threading.Condition()
    state: dict[str, Any] = {}

    def listener(table: object, snapshot: Any) -> None:
        with seen:
            state["snapshot"] = snapshot
            state["at"] = time.perf_counter()
            seen.notify_all()

    mesh.subscribe(listener)
    loop = asyncio.get_running_loop()
    raw = manifests(args.routes, random.Random(args.routes))
    route = next(o for o in raw if o["kind"] == "HTTPRoute")
    per = max(1, args.endpoints // args.routes)

    def one_change(kind: str, n: int) -> tuple[float, float]:
        if kind == "HTTPRoute":
            obj = {**route, "spec": {**route["spec"],
                                     "hostnames": [f"changed{n}.internal.example.com"]}}
            ns = route["metadata"]["namespace"]
            key = (ns, route["metadata"]["name"])
        else:
            obj = _slice(7, "team7", per, version=n)
            key = ("team7", "svc7-abc")
        t = time.perf_counter()
        parent.send(("apply", obj))
        rv = parent.recv()
        deadline = t + 60
        with seen:
            while True:
                snap = state.get("snapshot")
                got = snap.get(kind, *key) if snap is not None else None
                if got is not None and got.meta.resource_version == rv:
                    return store.published[snap.version] - t, state["at"] - t
                if not seen.wait(max(0.0, deadline - time.perf_counter())):
                    raise TimeoutError(f"{kind} change never reached the table")

    for kind in ("EndpointSlice", "HTTPRoute"):
        times = [await loop.run_in_executor(None, one_change, kind, n)
                 for n in range(1, args.trials + 1)]
        for label, ms in (("snapshot", sorted(t[0] * 1000 for t in times)),
                          ("new table" if kind == "HTTPRoute" else "balancer",
                           sorted(t[1] * 1000 for t in times))):
            print(f"one {kind} change to {label}: median {statistics.median(ms):.1f} ms "
                  f"(min {ms[0]:.1f}, max {ms[-1]:.1f}, {len(ms)} trials)")
    assert balancer is mesh.balancer(rand=random.random)
    await mesh.aclose()
    parent.send(("stop", None))
    proc.join(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--routes", type=int, default=10_000)
    p.add_argument("--endpoints", type=int, default=50_000)
    p.add_argument("--trials", type=int, default=15)
    p.add_argument("--page-size", type=int, default=500)
    p.add_argument("--debounce", type=float, default=KubeOptions().debounce)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
