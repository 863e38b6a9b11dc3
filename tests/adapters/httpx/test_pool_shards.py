"""PoolSet shards: more pools for a busy endpoint, one for a quiet one, all retired together."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshclient_httpx._pools import PoolEntry, PoolKey, PoolSet
from meshclient_httpx._shared import _share


def _key(host: str = "10.0.0.1") -> PoolKey:
    return PoolKey(b"http", host, 8080, None, (), None, False, True)


class _Made(list[PoolKey]):
    """A ``make`` that records the keys it made pools for (the pool is the key itself)."""

    def __call__(self, key: PoolKey) -> PoolKey:
        self.append(key)
        return key


def test_a_quiet_endpoint_keeps_one_pool() -> None:
    made = _Made()
    pools: PoolSet[PoolKey] = PoolSet(made, shards=4)
    for _ in range(10):
        pools.release(pools.acquire(_key()))
    assert made == [_key()]
    assert pools.statistics().open == 1


def test_a_busy_endpoint_spreads_over_its_shards_least_busy_first() -> None:
    made = _Made()
    pools: PoolSet[PoolKey] = PoolSet(made, shards=4)
    leases = [pools.acquire(_key()) for _ in range(4)]
    assert sorted(e.key.shard for e in leases) == [0, 1, 2, 3]
    fifth = pools.acquire(_key())  # every shard busy and no more allowed: the least busy
    assert fifth.in_flight == 2
    pools.release(leases[2])
    assert pools.acquire(_key()) is leases[2]  # the idle one now
    stats = pools.statistics()
    assert (stats.open, stats.in_flight, stats.endpoints) == (4, 5, ("10.0.0.1:8080",))


def test_remembered_picks_spread_too() -> None:
    pools: PoolSet[PoolKey] = PoolSet(_Made(), shards=2)
    pick = object()
    first = pools.acquire(_key())
    pools.remember(pick, "http", first)
    second = pools.acquire_for(pick, "http")
    assert second is not None and second is not first
    pools.release(first)
    assert pools.acquire_for(pick, "http") is first


def test_retire_closes_every_shard_once_idle() -> None:
    pools: PoolSet[PoolKey] = PoolSet(_Made(), shards=3)
    a, b, c = (pools.acquire(_key()) for _ in range(3))
    pools.release(a)
    to_close = pools.retire(live=set())
    assert to_close == [a.pool]  # idle now; the busy two close on their last release
    assert pools.release(b) == b.pool
    assert pools.release(c) == c.pool
    stats = pools.statistics()
    assert (stats.open, stats.closed) == (0, 3)
    fresh = pools.acquire(_key())  # the endpoint came back: a new pool, shard 0
    assert fresh.key.shard == 0 and fresh not in (a, b, c)


@given(ops=st.lists(st.tuples(st.sampled_from(["acquire", "release", "retire", "revive"]),
                              st.integers(0, 20)), max_size=60))
def test_shards_stay_consistent(ops: list[tuple[str, int]]) -> None:
    """Whatever happens, an endpoint never has two live pools with one shard number, never
    more than its shards, and every lease is counted exactly once."""
    pools: PoolSet[PoolKey] = PoolSet(_Made(), shards=3)
    held: list[PoolEntry[PoolKey]] = []
    for op, n in ops:
        if op == "acquire":
            held.append(pools.acquire(_key()))
        elif op == "release" and held:
            pools.release(held.pop(n % len(held)))
        elif op == "retire":
            pools.retire(live=set())
        else:
            pools.retire(live={("10.0.0.1", 8080)})
        live = [e for e in pools._entries.values() if not e.gone]
        shards = [e.key.shard for e in live]
        assert len(shards) == len(set(shards)) <= 3
        assert sum(e.in_flight for e in live) <= len(held)
    assert pools.statistics().in_flight == sum(1 for e in held if not e.gone)


@given(limit=st.integers(0, 200), shards=st.integers(1, 4))
def test_limits_are_split_between_shards(limit: int, shards: int) -> None:
    """The shards' parts add up to the limit, and differ by one at most."""
    parts = [_share(limit, shards, i) for i in range(shards)]
    assert sum(p or 0 for p in parts) == limit
    assert max(p or 0 for p in parts) - min(p or 0 for p in parts) <= 1
    assert _share(None, shards, 0) is None


def test_never_more_shards_than_connections() -> None:
    import httpx

    from meshclient import Mesh
    from meshclient_httpx import AsyncMeshTransport

    def shards(limits: httpx.Limits) -> int:
        return AsyncMeshTransport(Mesh.from_objects([]), limits=limits)._s.async_shards

    assert shards(httpx.Limits(max_connections=1)) == 1
    assert shards(httpx.Limits(max_connections=3)) == 3
    assert shards(httpx.Limits(max_connections=64)) == 4
    assert shards(httpx.Limits(max_connections=None)) == 4
