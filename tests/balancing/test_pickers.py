"""The four policies, weights (route and endpoint), exclusion, limits and empty sets."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.balancing import (
    Balancer,
    BalancerConfig,
    EndpointLimits,
    NoEndpoints,
    Overflow,
    Pick,
    Policy,
)
from meshclient.model import EndpointSlice, Service

from ._world import (
    OK,
    SVC,
    Backend,
    addresses,
    balancer,
    endpoint,
    endpoint_slice,
    must_pick,
    send,
    service,
    simple_world,
)


def chi_square_limit(df: int) -> float:
    """Upper χ² critical value at p ≈ 1e-6 (Wilson–Hilferty), so fixed-seed runs never flake."""
    z = 4.75
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: Counter[int], expected: dict[int, float]) -> float:
    return sum((counts.get(k, 0) - e) ** 2 / e for k, e in expected.items() if e > 0)


def _multi_world(n_backends: int) -> tuple[list[Service], list[EndpointSlice]]:
    services, slices = [], []
    for i in range(n_backends):
        name = f"s{i}"
        services.append(service(name))
        eps = [endpoint(f"10.{i}.0.1"), endpoint(f"10.{i}.0.2")]
        slices.append(endpoint_slice(f"{name}-1", eps, service=name))
    return services, slices


# -- policies --------------------------------------------------------------------------------


def test_round_robin_each_endpoint_once_per_cycle() -> None:
    """Round robin serves every endpoint once before any twice."""
    b = balancer(5)
    for _ in range(4):
        assert sorted(send(b, 0.0).address for _ in range(5)) == addresses(5)


def test_round_robin_start_offset_differs_between_clients() -> None:
    """Clients start the ring at a random offset, so a fleet does not hit endpoint 1 at once."""
    firsts = {send(balancer(10, seed=seed), 0.0).address for seed in range(20)}
    assert len(firsts) > 3


def test_random_uniform_counts_within_chi_square() -> None:
    """Random picks are uniform over equal-weight endpoints (χ², fixed seed)."""
    b = balancer(4, config=BalancerConfig(policy=Policy.RANDOM))
    n = 8000
    counts = Counter(addresses(4).index(send(b, 0.0).address) for _ in range(n))
    assert chi_square(counts, dict.fromkeys(range(4), n / 4)) < chi_square_limit(3)


def test_least_request_balances_outstanding_requests() -> None:
    """P2C least-request keeps in-flight counts level when nothing is reported back."""
    b = balancer(3, config=BalancerConfig(policy=Policy.LEAST_REQUEST))
    for _ in range(30):
        must_pick(b.pick(SVC, now=0.0))
    loads = [e.in_flight for e in b.endpoint_statistics("default", "svc", 80)]
    assert sum(loads) == 30
    assert max(loads) - min(loads) <= 2


def test_least_request_avoids_busy_endpoint() -> None:
    """An endpoint with requests stuck in flight loses every P2C comparison to idle ones."""
    b = balancer(3, config=BalancerConfig(policy=Policy.LEAST_REQUEST))
    stuck = []
    for _ in range(30):
        p = must_pick(b.pick(SVC, now=0.0))
        if p.address == "10.0.0.1":
            stuck.append(p)  # never answered
        else:
            b.report(p, OK, 0.01, now=0.0)
    assert stuck
    later = Counter(send(b, 1.0).address for _ in range(300))
    assert later["10.0.0.1"] == 0


def test_peak_ewma_steers_away_from_slow_endpoint() -> None:
    """Peak EWMA sends few requests to an endpoint 20× slower than its peers."""
    b = balancer(3, config=BalancerConfig(policy=Policy.PEAK_EWMA))
    now = 0.0
    counts: Counter[str] = Counter()
    for i in range(3000):
        p = must_pick(b.pick(SVC, now=now))
        latency = 0.2 if p.address == "10.0.0.1" else 0.01
        now += 0.01
        b.report(p, OK, latency, now=now)
        if i >= 500:
            counts[p.address] += 1
    assert counts["10.0.0.1"] < 0.05 * sum(counts.values())
    assert counts["10.0.0.2"] > 0.4 * sum(counts.values())


def test_peak_ewma_fast_failures_do_not_attract_traffic() -> None:
    """An endpoint failing fast (connect refused in 1 ms) is charged the failure penalty."""
    cfg = BalancerConfig(policy=Policy.PEAK_EWMA)
    b = balancer(3, config=cfg)
    now = 0.0
    counts: Counter[str] = Counter()
    for _ in range(400):
        p = must_pick(b.pick(SVC, now=now))
        now += 0.01
        if p.address == "10.0.0.1":
            b.report(p, OK.__class__(failure="reset"), 0.001, now=now)
        else:
            b.report(p, OK, 0.01, now=now)
        counts[p.address] += 1
    assert counts["10.0.0.1"] < 0.05 * 400


def test_peak_ewma_estimate_decays_so_slow_endpoint_is_retried() -> None:
    """After a long quiet spell the slow endpoint's estimate has decayed and it is tried again."""
    b = balancer(2, config=BalancerConfig(policy=Policy.PEAK_EWMA))
    now = 0.0
    for _ in range(50):
        p = must_pick(b.pick(SVC, now=now))
        b.report(p, OK, 0.5 if p.address == "10.0.0.1" else 0.01, now=now)
        now += 0.001
    before = Counter(send(b, now).address for _ in range(20))
    assert before["10.0.0.1"] == 0
    later = Counter(must_pick(b.pick(SVC, now=now + 120.0)).address for _ in range(4))
    assert later["10.0.0.1"] > 0


# -- weights ---------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(weights=st.lists(st.integers(0, 9), min_size=1, max_size=5).filter(any))
def test_route_weights_respected_and_zero_never_chosen(weights: list[int]) -> None:
    """Backends are chosen in proportion to weight (χ² at p≈1e-6), weight 0 never."""
    b = Balancer(rand=random.Random(11).random)
    b.update(*_multi_world(len(weights)))
    backends = [Backend("default", f"s{i}", 80, w) for i, w in enumerate(weights)]
    n = 3000
    counts = Counter(int(send(b, 0.0, backends=backends).backend.name[1:]) for _ in range(n))
    total = sum(weights)
    expected = {i: n * w / total for i, w in enumerate(weights)}
    assert all(counts[i] == 0 for i, w in enumerate(weights) if w == 0)
    positive = sum(1 for w in weights if w)
    if positive > 1:
        assert chi_square(counts, expected) < chi_square_limit(positive - 1)


@settings(max_examples=20, deadline=None)
@given(weights=st.lists(st.integers(0, 9), min_size=1, max_size=5).filter(any),
       policy=st.sampled_from(list(Policy)))
def test_endpoint_weights_respected_and_zero_never_chosen(weights: list[int],
                                                          policy: Policy) -> None:
    """Endpoint weights hold for every policy at idle; weight 0 takes no new traffic."""
    services, slices = simple_world(len(weights))
    b = Balancer(rand=random.Random(3).random, config=BalancerConfig(policy=policy))
    b.update(services, slices,
             weights=dict(zip(addresses(len(weights)), weights, strict=True)))
    n = 3000
    counts = Counter(addresses(len(weights)).index(send(b, 0.0).address) for _ in range(n))
    assert all(counts[i] == 0 for i, w in enumerate(weights) if w == 0)
    positive = sum(1 for w in weights if w)
    if positive > 1 and policy in (Policy.RANDOM, Policy.ROUND_ROBIN):
        expected = {i: n * w / sum(weights) for i, w in enumerate(weights)}
        assert chi_square(counts, expected) < chi_square_limit(positive - 1)


def test_weighted_round_robin_exact_shares() -> None:
    """Weighted round robin gives exact shares over a full cycle, interleaved."""
    services, slices = simple_world(3)
    b = Balancer(rand=random.Random(1).random)
    b.update(services, slices, weights={"10.0.0.1": 1, "10.0.0.2": 2, "10.0.0.3": 3})
    seq = [send(b, 0.0).address for _ in range(60)]
    assert Counter(seq) == {"10.0.0.1": 10, "10.0.0.2": 20, "10.0.0.3": 30}
    assert len(set(seq[:6])) == 3  # interleaved, not in runs


def test_all_backend_weights_zero_no_endpoints_500() -> None:
    """No backend with a positive weight: NoEndpoints with 500 (SPEC-NOTES §4.2 reading)."""
    b = balancer(2)
    got = b.pick([Backend("default", "svc", 80, 0)], now=0.0)
    assert isinstance(got, NoEndpoints) and got.status == 500 and got.backend is None


# -- empty sets --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(conditions=st.lists(st.sampled_from(["not-ready", "not-serving-terminating"]),
                           max_size=4),
       weight_zero=st.booleans(), unknown=st.booleans())
def test_pick_empty_set_returns_no_endpoints(conditions: list[str], weight_zero: bool,
                                             unknown: bool) -> None:
    """A set without usable endpoints gives NoEndpoints (503), never a Pick or an exception."""
    eps = [
        endpoint(f"10.0.0.{i + 1}", ready=False, serving=c != "not-ready", terminating=False)
        if c == "not-ready" else endpoint(f"10.0.0.{i + 1}", ready=False, serving=False,
                                           terminating=True)
        for i, c in enumerate(conditions)
    ]
    b = Balancer(rand=random.Random(0).random)
    b.update([service()], [endpoint_slice("a", eps)])
    backend = Backend("default", "nope" if unknown else "svc", 80)
    got = b.pick([backend], now=0.0, hash_key="k" if weight_zero else None)
    assert isinstance(got, NoEndpoints)
    assert got.status == 503 and got.backend == backend


def test_pick_single_port_service_found_without_port() -> None:
    """A backend without a port finds a single-port Service's set."""
    b = balancer(2)
    assert isinstance(b.pick([Backend("default", "svc", None)], now=0.0), Pick)


# -- exclusion and limits --------------------------------------------------------------------


def test_exclude_avoids_tried_endpoints_while_others_exist() -> None:
    """A retry's exclude set is honoured for every policy while untried endpoints remain."""
    for policy in Policy:
        b = balancer(3, config=BalancerConfig(policy=policy))
        for _ in range(50):
            got = send(b, 0.0, exclude={"10.0.0.1", "10.0.0.2"})
            assert got.address == "10.0.0.3"


def test_exclude_everything_still_picks() -> None:
    """When every endpoint was tried, the retry goes to one of them rather than failing."""
    b = balancer(2)
    got = send(b, 0.0, exclude={"10.0.0.1", "10.0.0.2"})
    assert got.address in {"10.0.0.1", "10.0.0.2"}


def test_limits_full_endpoints_overflow_value() -> None:
    """Every endpoint at max_concurrent (no queue): Overflow with 503, not an exception."""
    b = balancer(2, config=BalancerConfig(limits=EndpointLimits(max_concurrent=1)))
    held = [must_pick(b.pick(SVC, now=0.0)) for _ in range(2)]
    assert {p.address for p in held} == {"10.0.0.1", "10.0.0.2"}
    got = b.pick(SVC, now=0.0)
    assert isinstance(got, Overflow) and got.status == 503
    b.report(held[0], OK, 0.01, now=0.0)
    assert must_pick(b.pick(SVC, now=0.0)).address == held[0].address
    assert b.statistics().overflows == 1


def test_limits_pending_queue_marks_pick() -> None:
    """Past max_concurrent but within max_pending the pick says it will queue."""
    cfg = BalancerConfig(limits=EndpointLimits(max_concurrent=1, max_pending=1))
    b = balancer(1, config=cfg)
    first = must_pick(b.pick(SVC, now=0.0))
    second = must_pick(b.pick(SVC, now=0.0))
    assert (first.pending, second.pending) == (False, True)
    assert isinstance(b.pick(SVC, now=0.0), Overflow)


def test_limits_skip_full_endpoint_for_free_one() -> None:
    """A full endpoint is skipped in favour of one with room (round robin lands on it)."""
    b = balancer(3, config=BalancerConfig(limits=EndpointLimits(max_concurrent=2)))
    held = [must_pick(b.pick(SVC, now=0.0)) for _ in range(6)]
    assert Counter(p.address for p in held) == dict.fromkeys(addresses(3), 2)
    assert isinstance(b.pick(SVC, now=0.0), Overflow)
