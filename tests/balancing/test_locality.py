"""Locality tiers, trafficDistribution, hints and Envoy-style spill-over."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from meshclient.balancing import (
    Balancer,
    BalancerConfig,
    EndpointInfo,
    EndpointSet,
    Locality,
    OutlierConfig,
    Preference,
    assign_tiers,
    build_endpoint_sets,
    preference_for,
    tier_loads,
)
from meshclient.model import EndpointSlice, Service

from ._world import CONNECT, OK, SVC, Result, endpoint, endpoint_slice, must_pick, send, service

HERE = Locality(node="n1", zone="z1")


World = tuple[list[Service], list[EndpointSlice]]


def _zone_world(here: int, there: int, *, td: str | None = "PreferSameZone") -> World:
    eps = [endpoint(f"10.1.0.{i + 1}", zone="z1", node_name=f"n{i + 1}") for i in range(here)]
    eps += [endpoint(f"10.2.0.{i + 1}", zone="z2", node_name="far") for i in range(there)]
    return [service(traffic_distribution=td)], [endpoint_slice("a", eps)]


def _balancer(world: World, **config: object) -> Balancer:
    cfg = BalancerConfig(
        locality=HERE,
        outlier=OutlierConfig(max_ejection_percent=100),
        panic_threshold=0.0,
        **config,  # type: ignore[arg-type]
    )
    b = Balancer(rand=random.Random(5).random, config=cfg)
    b.update(*world)
    return b


def _set(endpoints: list[EndpointInfo], td: str | None = None) -> EndpointSet:
    return EndpointSet(namespace="default", service="svc", port=80, endpoints=tuple(endpoints),
                       traffic_distribution=td)


# -- preference and tiers -----------------------------------------------------------------


@pytest.mark.parametrize(("td", "expected"), [
    ("PreferClose", Preference.SAME_ZONE),
    ("PreferSameZone", Preference.SAME_ZONE),
    ("PreferSameNode", Preference.SAME_NODE),
    ("SomethingNew", Preference.NONE),
    (None, Preference.NONE),
])
def test_preference_traffic_distribution_maps(td: str | None, expected: Preference) -> None:
    """trafficDistribution values map to tiers; unknown ones are ignored like kube-proxy does."""
    e = EndpointInfo(key="a", address="10.0.0.1", addresses=("10.0.0.1",), port=80)
    assert preference_for(_set([e], td), Locality()) is expected


def test_preference_unset_uses_client_default() -> None:
    """Without trafficDistribution the client's default_preference applies."""
    e = EndpointInfo(key="a", address="10.0.0.1", addresses=("10.0.0.1",), port=80)
    local = Locality(default_preference=Preference.SAME_NODE)
    assert preference_for(_set([e]), local) is Preference.SAME_NODE


def test_preference_unset_with_all_zone_hints_prefers_zone() -> None:
    """Zone hints on every endpoint (topology-mode Auto) mean zone preference, as in kube-proxy."""
    e = EndpointInfo(key="a", address="10.0.0.1", addresses=("10.0.0.1",), port=80,
                     hint_zones=frozenset({"z1"}))
    assert preference_for(_set([e]), Locality()) is Preference.SAME_ZONE


def test_tiers_same_node_then_zone_then_rest() -> None:
    """PreferSameNode orders endpoints node, zone, rest by nodeName and zone."""
    svc = service(traffic_distribution="PreferSameNode")
    s = endpoint_slice("a", [
        endpoint("10.0.0.1", node_name="n1", zone="z1"),
        endpoint("10.0.0.2", node_name="n2", zone="z1"),
        endpoint("10.0.0.3", node_name="n3", zone="z2"),
    ])
    eps = build_endpoint_sets([svc], [s])["default", "svc", 80]
    assert assign_tiers(eps.endpoints, HERE, preference_for(eps, HERE)) == (0, 1, 2)


def test_tiers_zone_hints_override_zone_field() -> None:
    """forZones hints place an endpoint of another zone in ours when every endpoint is hinted."""
    svc = service(traffic_distribution="PreferClose")
    s = endpoint_slice("a", [
        endpoint("10.0.0.1", zone="z2", hint_zones=("z1",)),
        endpoint("10.0.0.2", zone="z1", hint_zones=("z3",)),
    ])
    eps = build_endpoint_sets([svc], [s])["default", "svc", 80]
    assert assign_tiers(eps.endpoints, HERE, Preference.SAME_ZONE) == (1, 2)


def test_tiers_partial_hints_ignored() -> None:
    """Hints on only some endpoints are ignored (a slice set mid-update), zones decide."""
    s = endpoint_slice("a", [
        endpoint("10.0.0.1", zone="z2", hint_zones=("z1",)),
        endpoint("10.0.0.2", zone="z1"),
    ])
    eps = build_endpoint_sets([service()], [s])["default", "svc", 80]
    assert assign_tiers(eps.endpoints, HERE, Preference.SAME_ZONE) == (2, 1)


def test_tiers_unknown_client_zone_all_rest() -> None:
    """A client that does not know its zone has an empty zone tier."""
    s = endpoint_slice("a", [endpoint("10.0.0.1", zone="z1")])
    eps = build_endpoint_sets([service()], [s])["default", "svc", 80]
    assert assign_tiers(eps.endpoints, Locality(), Preference.SAME_NODE) == (2,)


# -- loads -------------------------------------------------------------------------------


@pytest.mark.parametrize(("healthy", "total", "expected"), [
    ((10, 10), (10, 10), (1.0, 0.0)),
    ((8, 10), (10, 10), (1.0, 0.0)),          # 0.8 × 1.4 ≥ 1: no spill
    ((7, 10), (10, 10), (0.98, 0.02)),        # 0.7 × 1.4 = 0.98
    ((5, 10), (10, 10), (0.7, 0.3)),
    ((0, 10), (10, 10), (0.0, 1.0)),
    ((0, 5), (0, 10), (0.0, 1.0)),            # empty tier: all to the next
    ((2, 1), (10, 10), (0.28 / 0.42, 0.14 / 0.42)),  # sum < 1: scaled up
    ((0, 0), (3, 3), (0.0, 0.0)),             # nothing healthy: caller panics
])
def test_tier_loads_envoy_priority_rule(
    healthy: tuple[int, ...], total: tuple[int, ...], expected: tuple[float, ...]
) -> None:
    """Loads follow Envoy: health = min(1, 1.4 h/t), taken in order, normalised below 1."""
    got = tier_loads(healthy, total, 1.4)
    assert got == pytest.approx(expected)


# -- simulations through the balancer -------------------------------------------------------


def _eject(b: Balancer, bad: set[str], now: float = 0.0) -> None:
    script = dict.fromkeys(bad, CONNECT)
    ejected = 0
    for _ in range(400):
        stats = b.set_statistics("default", "svc", 80)
        assert stats is not None
        ejected = stats.ejected
        if ejected == len(bad):
            return
        send(b, now, script)
    raise AssertionError(f"only {ejected} of {len(bad)} ejected")


def _zone_share(b: Balancer, picks: int) -> float:
    zone = Counter(send(b, 1.0).address.startswith("10.1.") for _ in range(picks))
    return zone[True] / picks


def test_spillover_above_threshold_keeps_all_local() -> None:
    """With 8 of 10 local endpoints healthy (0.8 × 1.4 ≥ 1) nothing leaves the zone."""
    b = _balancer(_zone_world(10, 10))
    _eject(b, {"10.1.0.1", "10.1.0.2"})
    stats = b.set_statistics("default", "svc", 80)
    assert stats is not None and stats.tier_loads == (0.0, 1.0, 0.0)
    assert _zone_share(b, 2000) == 1.0


def test_spillover_below_threshold_sends_remainder_away() -> None:
    """With 5 of 10 local endpoints healthy the zone keeps 0.7 of traffic, the rest spills."""
    b = _balancer(_zone_world(10, 10))
    _eject(b, {f"10.1.0.{i}" for i in range(1, 6)})
    stats = b.set_statistics("default", "svc", 80)
    assert stats is not None and stats.tier_loads == pytest.approx((0.0, 0.7, 0.3))
    assert _zone_share(b, 4000) == pytest.approx(0.7, abs=0.03)


def test_spillover_just_below_threshold_spills_a_little() -> None:
    """At 7 of 10 healthy (0.98) a small share spills: the threshold is 1/1.4 ≈ 71 %."""
    b = _balancer(_zone_world(10, 10))
    _eject(b, {"10.1.0.1", "10.1.0.2", "10.1.0.3"})
    stats = b.set_statistics("default", "svc", 80)
    assert stats is not None and stats.tier_loads == pytest.approx((0.0, 0.98, 0.02))
    share = _zone_share(b, 5000)
    assert 0.97 <= share < 0.995


def test_spillover_local_tier_all_ejected_never_fails() -> None:
    """Every local endpoint ejected: all traffic goes to the other zone, no pick fails."""
    b = _balancer(_zone_world(3, 3))
    _eject(b, {"10.1.0.1", "10.1.0.2", "10.1.0.3"})
    assert _zone_share(b, 300) == 0.0


def test_locality_no_distribution_spreads_evenly() -> None:
    """Without trafficDistribution (and default preference NONE) zones get equal shares."""
    b = _balancer(_zone_world(5, 5, td=None))
    assert _zone_share(b, 1000) == 0.5


def test_locality_same_node_flag_set_only_for_own_node() -> None:
    """Pick.same_node is true exactly for endpoints whose nodeName is the client's node."""
    b = _balancer(_zone_world(3, 3, td="PreferSameNode"))
    first = must_pick(b.pick(SVC, now=0.0))
    assert (first.address, first.same_node) == ("10.1.0.1", True)
    b.report(first, OK, 0.01, now=0.0)
    b2 = _balancer(_zone_world(3, 3, td="PreferSameZone"))
    seen = {(p.address, p.same_node) for p in (send(b2, 0.0) for _ in range(9))}
    assert ("10.1.0.1", True) in seen and ("10.1.0.2", False) in seen


def test_locality_same_node_spills_to_zone_when_ejected() -> None:
    """PreferSameNode: the node's only endpoint ejected, traffic moves to the zone tier."""
    b = _balancer(_zone_world(3, 3, td="PreferSameNode"))
    bad: dict[str, Result] = {"10.1.0.1": CONNECT}
    for _ in range(3):
        send(b, 0.0, bad)
    seen = Counter(send(b, 0.0).address for _ in range(100))
    assert "10.1.0.1" not in seen
    assert set(seen) == {"10.1.0.2", "10.1.0.3"}


def test_spillover_hashed_keys_follow_tier_loads() -> None:
    """Hashed picks honour tiers too: all local when healthy, ≈70 % at 5 of 10 healthy."""
    b = _balancer(_zone_world(10, 10))
    keys = [f"user-{i}" for i in range(3000)]
    assert all(send(b, 0.0, hash_key=k).address.startswith("10.1.") for k in keys[:500])
    _eject(b, {f"10.1.0.{i}" for i in range(1, 6)})
    local = sum(send(b, 1.0, hash_key=k).address.startswith("10.1.") for k in keys)
    assert local / len(keys) == pytest.approx(0.7, abs=0.04)
    again = [send(b, 1.0, hash_key=k).address for k in keys[:200]]
    assert again == [send(b, 1.0, hash_key=k).address for k in keys[:200]]
