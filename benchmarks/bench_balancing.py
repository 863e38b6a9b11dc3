"""Median cost of one ``Balancer.pick`` plus its ``report``, for 1,000 endpoints, per policy.

Run from the repository root::

    python benchmarks/bench_balancing.py            # PYTHONPATH=. if meshclient isn't installed

Plain ``time.perf_counter`` loops, bounded: each case runs ``ROUNDS`` batches of ``BATCH``
pick+report pairs after a warm-up batch and takes the median batch time per pair; all cases
run ``REPEATS`` times over, and the best and worst medians are printed (shared machines
have bursts of load, which the worst column shows). The clock
advances 100 µs per pair (10 ms in the sparse case) so latency estimates decay as they would
in service.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshclient.balancing import (
    Balancer,
    BalancerConfig,
    EndpointLimits,
    Locality,
    Pick,
    Policy,
    Preference,
    SessionConfig,
)
from meshclient.model import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Meta,
    Service,
    ServicePort,
    SessionPersistence,
)

ENDPOINTS = 1000
ROUNDS = 15
BATCH = 5000
REPEATS = 3


@attrs.frozen
class Backend:
    namespace: str
    name: str
    port: int | None
    weight: int = 1


@attrs.frozen
class Outcome:
    status: int | None = None
    failure: str | None = None


def world(n: int) -> tuple[list[Service], list[EndpointSlice]]:
    svc = Service(
        meta=Meta(name="svc", namespace="bench"),
        ports=(ServicePort(name="http", port=80, target_port="web"),),
        traffic_distribution="PreferSameNode",
    )
    eps = tuple(
        Endpoint(addresses=(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",),
                 node_name=f"node-{i % 50}", zone=f"zone-{i % 3}")
        for i in range(n)
    )
    # Slices hold at most 100 endpoints by default (the controller's maxEndpointsPerSlice).
    slices = [
        EndpointSlice(meta=Meta(name=f"svc-{k}", namespace="bench"), service_name="svc",
                      endpoints=eps[k:k + 100], ports=(EndpointPort(name="http", port=8080),))
        for k in range(0, n, 100)
    ]
    return [svc], slices


def case(
    name: str, config: BalancerConfig, *, hash_keys: bool = False, session: bool = False,
    weights: bool = False, step: float = 1e-4,
) -> tuple[str, float]:
    rng = random.Random(7)
    b = Balancer(rand=rng.random, config=config)
    services, slices = world(ENDPOINTS)
    weight_map = (
        {e.addresses[0]: 1 + i % 4 for s in slices for i, e in enumerate(s.endpoints)}
        if weights else None
    )
    b.update(services, slices, weights=weight_map)
    backends = (Backend("bench", "svc", 80),)
    ok = Outcome(status=200)
    keys = [f"user-{i}" for i in range(4096)]
    sess = SessionConfig.from_persistence("HTTPRoute bench/r rule 0", SessionPersistence())
    tokens: list[str] = []
    if session:
        for _ in range(64):
            p = b.pick(backends, now=0.0, session=sess)
            assert isinstance(p, Pick) and p.session_token is not None
            b.report(p, ok, 0.001, now=0.0)
            tokens.append(p.session_token)
    if hash_keys:
        first = b.pick(backends, now=0.0, hash_key="warm")  # builds the Maglev table
        assert isinstance(first, Pick)
        b.report(first, ok, 0.001, now=0.0)
    now = 1.0
    pick, report = b.pick, b.report

    def batch() -> float:
        nonlocal now
        t0 = time.perf_counter()
        if hash_keys:
            for i in range(BATCH):
                p = pick(backends, now=now, hash_key=keys[i & 4095])
                report(p, ok, 0.002, now=now)  # type: ignore[arg-type]
                now += step
        elif session:
            for i in range(BATCH):
                p = pick(backends, now=now, session=sess, session_token=tokens[i & 63])
                report(p, ok, 0.002, now=now)  # type: ignore[arg-type]
                now += step
        else:
            for _ in range(BATCH):
                p = pick(backends, now=now)
                report(p, ok, 0.002, now=now)  # type: ignore[arg-type]
                now += step
        return (time.perf_counter() - t0) / BATCH

    batch()  # warm-up
    samples = [batch() for _ in range(ROUNDS)]
    return name, statistics.median(samples) * 1e6


def loop_overhead() -> float:
    """The same loop with do-nothing calls, to read the numbers against."""
    def nop(*a: object, **k: object) -> None:
        return None

    backends = (Backend("bench", "svc", 80),)
    ok = Outcome(status=200)
    now = 1.0
    samples = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(BATCH):
            p = nop(backends, now=now)
            nop(p, ok, 0.002, now=now)
            now += 1e-4
        samples.append((time.perf_counter() - t0) / BATCH)
    return statistics.median(samples) * 1e6


def main() -> None:
    local = Locality(node="node-1", zone="zone-1", default_preference=Preference.NONE)
    cases: list[Callable[[], tuple[str, float]]] = [
        lambda: case("round robin", BalancerConfig(policy=Policy.ROUND_ROBIN)),
        lambda: case("random", BalancerConfig(policy=Policy.RANDOM)),
        lambda: case("least request (P2C)", BalancerConfig(policy=Policy.LEAST_REQUEST)),
        lambda: case("peak EWMA (P2C)", BalancerConfig(policy=Policy.PEAK_EWMA)),
        # 10 ms between picks: every estimate is older than 0.2 s, so each comparison
        # decays both candidates with exp() (the case above mostly need not).
        lambda: case("peak EWMA, sparse traffic", BalancerConfig(policy=Policy.PEAK_EWMA),
                     step=1e-2),
        lambda: case("consistent hash (Maglev)", BalancerConfig(), hash_keys=True),
        lambda: case("session token (pinned)", BalancerConfig(), session=True),
        lambda: case("round robin, weighted endpoints", BalancerConfig(), weights=True),
        lambda: case("random, weighted endpoints", BalancerConfig(policy=Policy.RANDOM),
                     weights=True),
        lambda: case("round robin, 3 locality tiers",
                     BalancerConfig(locality=local)),
        lambda: case("least request, limits on",
                     BalancerConfig(policy=Policy.LEAST_REQUEST,
                                    limits=EndpointLimits(max_concurrent=100))),
    ]
    print(f"Python {sys.version.split()[0]}, {ENDPOINTS} endpoints, median of {ROUNDS} × "
          f"{BATCH} pick+report pairs, best and worst of {REPEATS} repeats")
    results: dict[str, list[float]] = {}
    for _ in range(REPEATS):  # all cases per repeat, so a burst of load hits one repeat
        for make in cases:
            name, us = make()
            results.setdefault(name, []).append(us)
    print(f"{'case':36s} {'best':>6s} {'worst':>6s}  µs/op")
    for name, runs in results.items():
        print(f"{name:36s} {min(runs):6.2f} {max(runs):6.2f}")
    print(f"{'(loop with do-nothing calls)':36s} {loop_overhead():6.2f}")


if __name__ == "__main__":
    main()
