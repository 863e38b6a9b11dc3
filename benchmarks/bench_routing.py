"""Routing benchmarks: compile time, memory and ``Mesh.resolve`` latency by table size.

Run from a checkout with the dev install: ``python benchmarks/bench_routing.py``
(``--sizes 10 1000 10000``, ``--requests 20000``). Numbers go to ``benchmarks/README.md``.

The routes are a realistic mix: one internal Gateway with a wildcard listener; each route
has its own hostname, two to four PathPrefix rules, one in four a header match, one in
eight an Exact path, one in ten a weighted split. Requests hit random routes, half on a
header-matched rule. No regexes (they are measured separately).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from typing import Any

from meshclient import Mesh
from meshclient.model import parse_object
from meshclient.routing import RequestHead, compile_table
from meshclient.store import Snapshot


def manifests(n: int, rng: random.Random) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [{
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "internal", "namespace": "infra"},
        "spec": {"gatewayClassName": "internal", "listeners": [{
            "name": "http", "port": 80, "protocol": "HTTP",
            "hostname": "*.internal.example.com",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]},
    }]
    for i in range(n):
        ns = f"team{i % 50}"
        rules = []
        for r in range(rng.randint(2, 4)):
            match: dict[str, Any] = {"path": {"type": "PathPrefix", "value": f"/api/v{r}"}}
            if rng.random() < 0.25:
                match["headers"] = [{"name": "x-canary", "value": "yes"}]
            if rng.random() < 0.125:
                match["path"] = {"type": "Exact", "value": f"/api/v{r}/health"}
            backends = [{"name": f"svc{i}", "port": 8080}]
            if rng.random() < 0.1:
                backends = [{"name": f"svc{i}", "port": 8080, "weight": 90},
                            {"name": f"svc{i}", "port": 8080, "weight": 10}]
            rules.append({"matches": [match], "backendRefs": backends})
        objs.append({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"route{i}", "namespace": ns},
            "spec": {"parentRefs": [{"name": "internal", "namespace": "infra"}],
                     "hostnames": [f"svc{i}.internal.example.com"], "rules": rules},
        })
        objs.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc{i}", "namespace": ns},
            "spec": {"clusterIP": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                     "ports": [{"name": "http", "port": 8080}]},
        })
    return objs


def measure(n: int, requests: int, repeat: int = 3) -> dict[str, float]:
    """Compile time (best of ``repeat``), peak memory, and per-call medians (best of
    ``repeat`` runs of ``requests`` calls: on a shared machine a run can be slowed whole)."""
    rng = random.Random(n)
    raw = manifests(n, rng)
    objects = [o for o in (parse_object(d)[0] for d in raw) if o is not None]
    snapshot = Snapshot.build(objects, version=1)
    compile_s = float("inf")
    for _ in range(repeat):
        table = None
        gc.collect()
        t0 = time.perf_counter()
        table = compile_table(snapshot)
        compile_s = min(compile_s, time.perf_counter() - t0)
    # Memory separately: tracemalloc slows the compile it watches several times over.
    tracemalloc.start()
    compile_table(snapshot)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mesh = Mesh.from_objects(objects)
    urls = []
    for _ in range(1000):
        i = rng.randrange(n)
        urls.append((f"http://svc{i}.internal.example.com/api/v{rng.randint(0, 3)}/items/42",
                     {"x-canary": "yes"} if rng.random() < 0.5 else {}))
    heads = [RequestHead.from_url("GET", u, h) for u, h in urls]
    # Batches of 100 calls, timed per batch: medians of per-call cost, robust to noise.
    runs = [_calls(mesh, table, urls, heads, requests) for _ in range(repeat)]
    resolve_us = min(runs, key=lambda r: statistics.median(r[0]))[0]
    decide_us = min(runs, key=lambda r: statistics.median(r[1]))[1]
    return {"routes": n, "compile_s": compile_s, "compile_peak_mb": peak / 2**20,
            "resolve_us": statistics.median(resolve_us), "decide_us": statistics.median(decide_us),
            "resolve_min": min(resolve_us), "decide_min": min(decide_us)}


def _calls(mesh: Mesh, table: Any, urls: list[tuple[str, dict[str, str]]],
           heads: list[RequestHead], requests: int) -> tuple[list[float], list[float]]:
    resolve_us, decide_us = [], []
    for b in range(requests // 100):
        batch = urls[(b * 100) % 1000:(b * 100) % 1000 + 100]
        t0 = time.perf_counter_ns()
        for u, h in batch:
            mesh.resolve("GET", u, h)
        resolve_us.append((time.perf_counter_ns() - t0) / 100 / 1000)
        hb = heads[(b * 100) % 1000:(b * 100) % 1000 + 100]
        t0 = time.perf_counter_ns()
        for head in hb:
            table.decide(head)
        decide_us.append((time.perf_counter_ns() - t0) / 100 / 1000)
    return resolve_us, decide_us


def measure_incremental(n: int, trials: int = 21) -> tuple[float, list[float]]:
    """(full compile, recompiles after one changed route each), seconds.

    Each trial changes a different route through a ``Store`` (what the sources use) and
    compiles with the previous table, as ``Mesh`` does: odd trials move a rule's path, even
    ones give the route a new hostname (new host claims on the Gateway).
    """
    from meshclient.store import Store

    rng = random.Random(n)
    raw = manifests(n, rng)
    store = Store()
    store.replace([o for o in (parse_object(d)[0] for d in raw) if o is not None])
    gc.collect()
    t0 = time.perf_counter()
    table = compile_table(store.snapshot)
    full = time.perf_counter() - t0
    routes = [d for d in raw if d["kind"] == "HTTPRoute"]
    times = []
    for trial in range(trials):
        changed = routes[(trial * 7919) % len(routes)]
        if trial % 2:
            changed["spec"]["rules"][0]["matches"][0]["path"] = {
                "type": "PathPrefix", "value": f"/changed{trial}"}
        else:
            changed["spec"]["hostnames"] = [f"changed{trial}.internal.example.com"]
        obj = parse_object(changed)[0]
        assert obj is not None
        store.upsert(obj)
        t0 = time.perf_counter()
        table = compile_table(store.snapshot, previous=table)
        times.append(time.perf_counter() - t0)
    return full, times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    p.add_argument("--requests", type=int, default=20000)
    args = p.parse_args()
    print("| routes | compile (s) | compile peak memory (MB) | Mesh.resolve median (min) µs "
          "| decide(head) median (min) µs |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        r = measure(n, args.requests)
        print(f"| {n:,} | {r['compile_s']:.3f} | {r['compile_peak_mb']:.1f} | "
              f"{r['resolve_us']:.2f} ({r['resolve_min']:.2f}) | "
              f"{r['decide_us']:.2f} ({r['decide_min']:.2f}) |")
    full, times = measure_incremental(max(args.sizes))
    times.sort()
    print(f"\none changed route at {max(args.sizes):,} routes: full compile {full:.3f} s; "
          f"new table with the previous one passed in: median {statistics.median(times) * 1000:.1f}"
          f" ms, max {times[-1] * 1000:.1f} ms ({len(times)} trials)")


if __name__ == "__main__":
    main()
