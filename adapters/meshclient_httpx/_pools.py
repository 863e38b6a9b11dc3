"""Connection pools, one per endpoint and TLS identity, and the bookkeeping that retires them.

httpcore keeps one flat list per pool and scans it per request, its keep-alive check counts
every connection (encode/httpcore#1000), and it reuses a TLS connection for another
``sni_hostname`` (ECOSYSTEM.md §1.2). So each endpoint gets its own small pool, keyed by
everything that identifies the connection: scheme, address, port, the TLS name, the identity
the peer must prove, and whether it speaks HTTP/2 with prior knowledge.

Busy endpoints get more than one pool (``shards``, for the async transport): httpcore's pool
does a pass over its connections and waiting requests on every request and every response
close, under one lock, so four concurrent requests through one pool cost more than four
through four pools (paired runs at concurrency 16 over four endpoints: 7–10 % more
throughput). A new shard opens only when every shard of the endpoint is busy, and each has
an equal share of the connection limits.

``PoolSet`` is bookkeeping only (STYLE.md §3): it hands out pools and counts leases, and
returns the pools to close when an endpoint leaves the EndpointSlices; the transport closes
them (sync or async), after their in-flight responses are done, because closing a pool closes
every connection in it, active ones included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Final, Generic, NamedTuple, TypeVar

import attrs

__all__ = ["PoolEntry", "PoolKey", "PoolSet", "PoolStatistics"]

P = TypeVar("P")

_MAX_REMEMBERED: Final = 4096
"""Picks remembered per pool set (one per endpoint and backend that references it)."""


class PoolKey(NamedTuple):
    scheme: bytes
    """b"http" or b"https" as sent to the endpoint."""
    host: str
    """Endpoint IP (or the gateway's address)."""
    port: int
    tls_name: str | None
    """SNI and verified name; None for plaintext."""
    expected: tuple[tuple[str, str], ...]
    """SANs the peer must carry (BackendTLSPolicy ``subjectAltNames``); () for none."""
    ca: str | None
    """The policy's CA bundle (None: the default trust)."""
    h2c: bool
    """HTTP/2 with prior knowledge over cleartext (appProtocol ``kubernetes.io/h2c``)."""
    endpoint: bool
    """An EndpointSlice endpoint (retired when it disappears); False for gateway hops."""
    shard: int = 0
    """Which of the endpoint's pools (see the module docstring)."""


class PoolEntry(Generic[P]):
    """One pool and its lease count."""

    __slots__ = ("gone", "group", "host", "in_flight", "key", "pool", "retired")

    def __init__(self, key: PoolKey, pool: P) -> None:
        self.key = key
        self.host = key.host.encode("ascii")
        """The address as httpcore's URL wants it, encoded once."""
        self.pool = pool
        self.in_flight = 0
        self.retired = False
        self.group: list[PoolEntry[P]] | None = None
        """The endpoint's shards, this one among them, while it is in the set."""
        self.gone = False
        """No longer in its ``PoolSet`` (closed or to be closed): never lease it again."""


@attrs.frozen(kw_only=True)
class PoolStatistics:
    open: int
    """Pools currently held (retired ones included until they close)."""
    in_flight: int
    """Leases out: attempts whose response is not closed yet."""
    retired: int
    """Pools whose endpoint is gone, waiting for their last response to close."""
    closed: int
    """Pools closed since the transport was made."""
    endpoints: tuple[str, ...]
    """``host:port`` of every open pool, sorted."""


class PoolSet(Generic[P]):
    """Pools by ``PoolKey``, created on first use by ``make``.

    Thread-safe: leases are counted under a short lock (the sync transport is shared by
    threads; the async one by tasks, where the lock is never contended).
    """

    def __init__(self, make: Callable[[PoolKey], P], *, shards: int = 1) -> None:
        self._make = make
        self._shards = shards
        self._entries: dict[PoolKey, PoolEntry[P]] = {}
        # The live shards of each endpoint, by the key of shard 0.
        self._groups: dict[PoolKey, list[PoolEntry[P]]] = {}
        # The entry leased last for a balancer pick: picks are prebuilt per endpoint and
        # shared between requests, so the same pick object maps to the same pool and the
        # key need not be built and hashed again. Keyed by id(); the value holds the pick,
        # so the id cannot be reused while the entry is here. Cleared at every endpoint
        # change (``retire``) and bounded.
        self._by_pick: dict[int, tuple[object, str, list[PoolEntry[P]]]] = {}
        self._lock = threading.Lock()
        self._closed = 0

    def acquire(self, key: PoolKey) -> PoolEntry[P]:
        """The pool for ``key``, leased: ``release`` it when the attempt's response closes."""
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = []
            return self._lease(key, group)

    def _lease(self, key: PoolKey, group: list[PoolEntry[P]]) -> PoolEntry[P]:
        # The least busy shard; a new one only when every shard is busy. Under the lock.
        best = None
        for entry in group:
            if best is None or entry.in_flight < best.in_flight:
                best = entry
        if best is None or (best.in_flight and len(group) < self._shards):
            taken = {e.key.shard for e in group}
            shard = next(i for i in range(self._shards) if i not in taken)
            base = key._replace(shard=0) if key.shard else key
            shard_key = base._replace(shard=shard) if shard else base
            best = self._entries[shard_key] = PoolEntry(shard_key, self._make(shard_key))
            best.group = group
            group.append(best)
        best.in_flight += 1
        return best

    def acquire_for(self, pick: object, scheme: str) -> PoolEntry[P] | None:
        """The pool leased last for this very ``pick`` and request scheme, leased again.

        Returns:
            None when there is none (or it left the set): then ``acquire`` the key and
            ``remember`` it. Only for picks whose key depends on nothing but the pick, the
            backend and the scheme (not on the request's host).
        """
        hit = self._by_pick.get(id(pick))
        if hit is None or hit[0] is not pick or hit[1] != scheme:
            return None
        group = hit[2]
        lock = self._lock
        lock.acquire()  # not ``with``: this runs per request
        try:
            if not group:
                return None
            if self._shards == 1:
                entry = group[0]
                entry.in_flight += 1
                return entry
            return self._lease(group[0].key, group)
        finally:
            lock.release()

    def remember(self, pick: object, scheme: str, entry: PoolEntry[P]) -> None:
        """Let ``acquire_for(pick, scheme)`` find ``entry`` (leased by ``acquire``)."""
        with self._lock:
            if entry.gone or entry.group is None:
                return
            if len(self._by_pick) >= _MAX_REMEMBERED:
                self._by_pick.clear()
            self._by_pick[id(pick)] = (pick, scheme, entry.group)

    def release(self, entry: PoolEntry[P]) -> P | None:
        """End one lease; returns the pool to close when it was retired and is now idle."""
        lock = self._lock
        lock.acquire()  # not ``with``: this runs per request
        try:
            entry.in_flight -= 1
            if entry.retired and entry.in_flight <= 0 and (
                self._entries.get(entry.key) is entry
            ):
                self._forget(entry)
                self._closed += 1
                return entry.pool
            return None
        finally:
            lock.release()

    def retire(self, live: Collection[tuple[str, int]]) -> list[P]:
        """Retire endpoint pools whose ``(address, port)`` is not in ``live``.

        Returns:
            Pools to close now (idle); busy ones close on their last ``release``. A retired
            endpoint that comes back before it closed is simply kept.
        """
        to_close: list[P] = []
        with self._lock:
            self._by_pick.clear()  # the balancer makes new picks; let the old ones go
            for key, entry in list(self._entries.items()):
                if not key.endpoint:
                    continue
                if (key.host, key.port) in live:
                    entry.retired = False
                    continue
                entry.retired = True
                if entry.in_flight <= 0:
                    self._forget(entry)
                    self._closed += 1
                    to_close.append(entry.pool)
        return to_close

    def drain(self) -> list[P]:
        """Forget every pool and return them all, to be closed (transport close)."""
        with self._lock:
            pools = []
            for e in self._entries.values():
                e.gone = True
                if e.group is not None:
                    e.group.clear()
                pools.append(e.pool)
            self._closed += len(pools)
            self._entries.clear()
            self._groups.clear()
            self._by_pick.clear()
        return pools

    def _forget(self, entry: PoolEntry[P]) -> None:
        """Take ``entry`` out of the set (under the lock): it is never leased again."""
        del self._entries[entry.key]
        entry.gone = True
        group = entry.group
        if group is not None:
            group.remove(entry)
            base = entry.key._replace(shard=0)
            if not group and self._groups.get(base) is group:
                del self._groups[base]

    def statistics(self) -> PoolStatistics:
        with self._lock:
            entries = list(self._entries.values())
            return PoolStatistics(
                open=len(entries),
                in_flight=sum(e.in_flight for e in entries),
                retired=sum(1 for e in entries if e.retired),
                closed=self._closed,
                endpoints=tuple(sorted({f"{e.key.host}:{e.key.port}" for e in entries})),
            )

    def __repr__(self) -> str:
        s = self.statistics()
        return (f"<PoolSet open={s.open} in_flight={s.in_flight} retired={s.retired} "
                f"closed={s.closed}>")
