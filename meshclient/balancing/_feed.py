"""Keeping a Balancer in step with a store's snapshots, at the cost of what changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from meshclient.balancing._engine import Balancer
from meshclient.model import EndpointSlice, Object, Service
from meshclient.store import Snapshot

__all__ = ["EndpointFeed", "live_endpoints"]

ServiceKey = tuple[str, str]


class EndpointFeed:
    """Feeds one Balancer the Services and EndpointSlices of successive snapshots.

    Each ``advance`` rebuilds only the endpoint sets of Services whose Service object or
    EndpointSlices changed. Which ones changed comes from the store's record of changed keys
    (``Snapshot.changes_since``) and the slices of a Service from an index kept here, so in a
    cluster of 50,000 endpoints one changed slice costs that slice's Service, not a scan of
    every slice. Not thread-safe: its owner serialises calls (the Mesh holds its lock).
    """

    def __init__(self, balancer: Balancer, snapshot: Snapshot) -> None:
        self._balancer = balancer
        self._slices_of: dict[ServiceKey, set[tuple[str, str]]] = {}
        for key, obj in snapshot.of("EndpointSlice").items():
            owner = _owner(obj)
            if owner is not None:
                self._slices_of.setdefault(owner, set()).add(key)
        balancer.update(
            (s for s in snapshot.of("Service").values() if isinstance(s, Service)),
            (e for e in snapshot.of("EndpointSlice").values() if isinstance(e, EndpointSlice)),
        )
        self._seen = snapshot

    def advance(self, snapshot: Snapshot) -> None:
        """Bring the balancer from the last snapshot seen to ``snapshot``."""
        old, self._seen = self._seen, snapshot
        changed: set[ServiceKey] = set()
        a, b = old.of("EndpointSlice"), snapshot.of("EndpointSlice")
        for key in _changed_keys(old, snapshot, "EndpointSlice"):
            was, now = a.get(key), b.get(key)
            if was is now:
                continue
            owner = _owner(was)
            if owner is not None:
                changed.add(owner)
                keys = self._slices_of.get(owner)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._slices_of[owner]
            owner = _owner(now)
            if owner is not None:
                changed.add(owner)
                self._slices_of.setdefault(owner, set()).add(key)
        sa, sb = old.of("Service"), snapshot.of("Service")
        changed.update(k for k in _changed_keys(old, snapshot, "Service")
                       if sa.get(k) is not sb.get(k))
        if not changed:
            return
        if len(changed) * 4 >= len(sb) + 1:
            # Most of the cluster changed (a relist after a long outage): rebuild it all.
            self._balancer.update(
                (s for s in sb.values() if isinstance(s, Service)),
                (e for e in b.values() if isinstance(e, EndpointSlice)),
            )
            return
        self._balancer.update(
            (s for k in changed if isinstance(s := sb.get(k), Service)),
            self._slices(changed, b),
            only=changed,
        )

    def _slices(self, services: set[ServiceKey], slices: Mapping[tuple[str, str], Object]
                ) -> Iterator[EndpointSlice]:
        for owner in services:
            for key in self._slices_of.get(owner, ()):
                obj = slices.get(key)
                if isinstance(obj, EndpointSlice):
                    yield obj


def _owner(obj: Object | None) -> ServiceKey | None:
    if isinstance(obj, EndpointSlice) and obj.service_name:
        return (obj.meta.namespace, obj.service_name)
    return None


def _changed_keys(old: Snapshot, new: Snapshot, kind: str) -> Iterator[tuple[str, str]]:
    """Keys of ``kind`` that may differ: the store's record when it has one, else a scan."""
    keys = new.changes_since(kind, old.lineage, old.kind_versions.get(kind, 0))
    if keys is not None:
        yield from keys
        return
    a, b = old.of(kind), new.of(kind)
    if a is b:
        return
    yield from (k for k, v in b.items() if a.get(k) is not v)
    yield from (k for k in a if k not in b)


def live_endpoints(snapshot: Snapshot) -> frozenset[tuple[str, int]]:
    """Every (address, port) an EndpointSlice of ``snapshot`` lists (the adapters close the
    connections of endpoints that left it)."""
    out: set[tuple[str, int]] = set()
    for s in snapshot.of("EndpointSlice").values():
        if not isinstance(s, EndpointSlice):
            continue
        ports = [p.port for p in s.ports if p.port is not None]
        for e in s.endpoints:
            for a in e.addresses:
                out.update((a, p) for p in ports)
    return frozenset(out)
