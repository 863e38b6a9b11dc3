"""Consistent hashing (Maglev): minimal movement, agreement across processes, weights."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from meshclient.balancing import TABLE_SIZE, Balancer, build_maglev, key_hash

from ._world import CONNECT, Backend, addresses, balancer, send, simple_world

KEYS = [f"user-{i}" for i in range(6000)]


def _mapping(b: Balancer, keys: list[str] = KEYS) -> dict[str, str]:
    return {k: send(b, 0.0, hash_key=k).address for k in keys}


def _moved(before: dict[str, str], after: dict[str, str]) -> float:
    return sum(before[k] != after[k] for k in before) / len(before)


def test_maglev_adding_one_endpoint_moves_about_one_nth() -> None:
    """Adding an 11th endpoint moves ≈1/11 of keys, nearly all of them onto the newcomer."""
    b = balancer(10)
    before = _mapping(b)
    b.update(*simple_world(11))
    after = _mapping(b)
    moved = _moved(before, after)
    assert 0.7 / 11 < moved < 1.3 / 11
    moved_keys = [k for k in KEYS if before[k] != after[k]]
    # Maglev is near-minimal, not minimal: a few percent of moves shuffle between old ones.
    assert sum(after[k] == "10.0.0.11" for k in moved_keys) > 0.9 * len(moved_keys)


def test_maglev_removing_one_endpoint_moves_about_one_nth() -> None:
    """Removing one of 10 endpoints moves its keys (≈1/10) and little else."""
    b = balancer(10)
    before = _mapping(b)
    services, slices = simple_world(10)
    kept = slices[0].endpoints[:4] + slices[0].endpoints[5:]
    b.update(services, [type(slices[0])(meta=slices[0].meta, service_name="svc",
                                        endpoints=kept, ports=slices[0].ports)])
    after = _mapping(b)
    gone = [k for k in KEYS if before[k] == "10.0.0.5"]
    assert all(after[k] != "10.0.0.5" for k in gone)
    assert _moved(before, after) < 1.3 / 10
    others_moved = sum(before[k] != after[k] for k in KEYS if before[k] != "10.0.0.5")
    assert others_moved / len(KEYS) < 0.03


def test_maglev_same_mapping_in_every_process() -> None:
    """Two balancers with different random sources map every key alike (no hash())."""
    assert _mapping(balancer(7, seed=1)) == _mapping(balancer(7, seed=99))


def test_maglev_ejected_endpoint_keys_spread_others_stay() -> None:
    """An ejected endpoint's keys go elsewhere while every other key stays put."""
    b = balancer(10)
    before = _mapping(b, KEYS[:2000])
    victim_keys = [k for k in KEYS[:2000] if before[k] == "10.0.0.3"]
    for k in victim_keys[:3]:
        send(b, 0.0, {"10.0.0.3": CONNECT}, hash_key=k)
    assert b.set_statistics("default", "svc", 80).ejected == 1  # type: ignore[union-attr]
    after = _mapping(b, KEYS[:2000])
    assert all(after[k] != "10.0.0.3" for k in victim_keys)
    assert len({after[k] for k in victim_keys}) > 3  # spread, not dumped on one neighbour
    assert all(after[k] == before[k] for k in KEYS[:2000] if before[k] != "10.0.0.3")


def test_maglev_shares_even_across_endpoints() -> None:
    """Each of 10 endpoints owns about a tenth of the table and of the keys."""
    table = build_maglev([f"e{i}" for i in range(10)], [1] * 10)
    assert len(table) == TABLE_SIZE
    shares = Counter(table)
    assert max(shares.values()) - min(shares.values()) <= 1
    keys = Counter(_mapping(balancer(10)).values())
    assert all(abs(n - len(KEYS) / 10) < 0.15 * len(KEYS) / 10 for n in keys.values())


def test_maglev_weights_give_proportional_slots() -> None:
    """An endpoint of weight w owns w/Σw of the table."""
    table = build_maglev(["a", "b", "c"], [1, 2, 5], size=1031)
    shares = Counter(table)
    assert shares[0] / 1031 == pytest.approx(1 / 8, abs=0.01)
    assert shares[1] / 1031 == pytest.approx(2 / 8, abs=0.01)
    assert shares[2] / 1031 == pytest.approx(5 / 8, abs=0.01)


def test_maglev_empty_set_empty_table() -> None:
    """No endpoints, no table."""
    assert len(build_maglev([], [])) == 0


def test_hash_backend_choice_weighted_and_sticky() -> None:
    """With several backends a key keeps its backend, and backends share keys by weight."""
    services, slices = [], []
    for name in ("a", "b"):
        s, sl = simple_world(3, name=name)
        services += s
        slices += sl
    b = Balancer(rand=random.Random(2).random)
    b.update(services, slices)
    backends = [Backend("default", "a", 80, 1), Backend("default", "b", 80, 3)]
    first = {k: send(b, 0.0, backends=backends, hash_key=k).backend.name for k in KEYS[:4000]}
    again = {k: send(b, 0.0, backends=backends, hash_key=k).backend.name for k in KEYS[:4000]}
    assert first == again
    assert Counter(first.values())["b"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_key_hash_stable_value() -> None:
    """The key hash is CRC-32 of the UTF-8 key: fixed across runs and versions."""
    assert key_hash("user-1") == 0x7E264614
    assert key_hash("") == 0


def test_hash_keys_spread_over_endpoints_without_policy_state() -> None:
    """Hashed picks ignore the round-robin cursor: the same key gives the same endpoint."""
    b = balancer(5)
    rotating = {send(b, 0.0).address for _ in range(5)}
    assert rotating == set(addresses(5))
    assert len({send(b, 0.0, hash_key="same").address for _ in range(20)}) == 1
