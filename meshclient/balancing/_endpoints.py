"""From Services and EndpointSlices to the endpoint set of each (Service, service port).

The result is a function of the current Services and slices only: slices that come and go
need no bookkeeping, because every update recomputes the sets from what exists now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from meshclient.model import Endpoint, EndpointSlice, Service, ServicePort

__all__ = [
    "DEFAULT_IP_FAMILIES",
    "EndpointInfo",
    "EndpointSet",
    "SetKey",
    "build_endpoint_sets",
]

SetKey = tuple[str, str, int]
"""(namespace, Service name, Service port): how backends find their endpoint set."""

DEFAULT_IP_FAMILIES: Final = ("IPv4", "IPv6")
"""Address families used, in order of preference when a Pod has one address of each."""

# kube-proxy's ranking: ready endpoints take traffic; serving-and-terminating ones only when
# no endpoint is ready (KEP-1669, ProxyTerminatingEndpoints); the rest never.
_READY: Final = 0
_SERVING_TERMINATING: Final = 1
_UNUSABLE: Final = 2


@attrs.frozen(kw_only=True)
class EndpointInfo:
    """One endpoint (usually a Pod) of one Service port, as the balancer sees it."""

    key: str
    """Stable identity for hashing and session tokens: the targetRef, else the address."""
    address: str
    """The address to connect to, of the most preferred family the endpoint has."""
    addresses: tuple[str, ...]
    """Every address of the endpoint (one per family), ``address`` first."""
    port: int
    """The target port number, as the slice resolved it (named target ports included)."""
    app_protocol: str | None = None
    node: str | None = None
    zone: str | None = None
    hint_zones: frozenset[str] = frozenset()
    hint_nodes: frozenset[str] = frozenset()
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    weight: int = 1
    """Relative share within its locality tier; 0 takes no new traffic except pinned sessions."""
    hostname: str | None = None
    target: str | None = None


@attrs.frozen(kw_only=True)
class EndpointSet:
    """The endpoints one Service port sends traffic to, sorted by ``key``."""

    namespace: str
    service: str
    port: int
    """The Service port (what backendRefs name), not the target port."""
    port_name: str = ""
    app_protocol: str | None = None
    """The Service port's appProtocol; an endpoint's own value, when set, wins."""
    traffic_distribution: str | None = None
    endpoints: tuple[EndpointInfo, ...] = ()
    terminating_fallback: bool = False
    """True when nothing was ready and serving-but-terminating endpoints stand in."""
    left_out: int = 0
    """Endpoints present in slices but not usable (not ready, not serving-terminating)."""

    @property
    def key(self) -> SetKey:
        return (self.namespace, self.service, self.port)


@attrs.frozen
class _Record:
    """One address of one endpoint in one slice, before deduplication."""

    rank: int
    family: int
    order: int
    key: str
    address: str
    port: int
    app_protocol: str | None
    endpoint: Endpoint


def _rank(e: Endpoint) -> int:
    if e.ready:
        return _READY
    if e.serving and e.terminating:
        return _SERVING_TERMINATING
    return _UNUSABLE


def _match_port(slice_: EndpointSlice, sp: ServicePort) -> tuple[int, str | None] | None:
    # EndpointSlice ports carry the Service port's *name* (KEP-752); the number is the target
    # port the controller resolved, which is how named targetPorts reach us.
    for p in slice_.ports:
        if p.name == sp.name and p.protocol == sp.protocol and p.port is not None:
            return p.port, p.app_protocol
    return None


def _merge(key: str, records: list[_Record], weights: Mapping[str, int]) -> EndpointInfo:
    # The same endpoint listed twice (slices being rebalanced, or once per family) is one
    # endpoint: its best-ranked record speaks for it, preferred family first.
    records.sort(key=lambda r: (r.rank, r.family, r.order))
    best = records[0]
    addresses: list[str] = []
    for r in records:
        if r.address not in addresses:
            addresses.append(r.address)
    e = best.endpoint
    return EndpointInfo(
        key=key,
        address=best.address,
        addresses=tuple(addresses),
        port=best.port,
        app_protocol=best.app_protocol,
        node=e.node_name,
        zone=e.zone,
        hint_zones=frozenset(e.hint_zones),
        hint_nodes=frozenset(e.hint_nodes),
        ready=e.ready,
        serving=e.serving,
        terminating=e.terminating,
        weight=weights.get(best.address, 1),
        hostname=e.hostname,
        target=e.target,
    )


def _build_one(
    svc: Service,
    sp: ServicePort,
    slices: list[EndpointSlice],
    families: Mapping[str, int],
    weights: Mapping[str, int],
) -> EndpointSet:
    by_key: dict[str, list[_Record]] = {}
    order = 0
    for slice_ in slices:
        family = families.get(slice_.address_type)
        if family is None:
            continue  # FQDN slices, or a family the client does not use
        matched = _match_port(slice_, sp)
        if matched is None:
            continue
        port, app_protocol = matched
        for e in slice_.endpoints:
            # Consumers use addresses[0] only (KEP-752: the rest are reserved).
            address = e.addresses[0]
            # A dual-stack Pod appears in one slice per family; its targetRef joins them, so
            # it counts once. Without a targetRef the address is all we can go by.
            key = e.target or address
            by_key.setdefault(key, []).append(
                _Record(_rank(e), family, order, key, address, port,
                        app_protocol or sp.app_protocol, e)
            )
            order += 1
    infos: list[EndpointInfo] = []
    ranks: list[int] = []
    for key in sorted(by_key):
        records = by_key[key]
        infos.append(_merge(key, records, weights))
        ranks.append(records[0].rank)  # sorted by _merge: the best rank
    ready = tuple(i for i, r in zip(infos, ranks, strict=True) if r == _READY)
    fallback = False
    chosen = ready
    if not ready:
        chosen = tuple(i for i, r in zip(infos, ranks, strict=True) if r == _SERVING_TERMINATING)
        fallback = bool(chosen)
    chosen = _dedupe_addresses(chosen)
    return EndpointSet(
        namespace=svc.meta.namespace,
        service=svc.meta.name,
        port=sp.port,
        port_name=sp.name,
        app_protocol=sp.app_protocol,
        traffic_distribution=svc.traffic_distribution,
        endpoints=chosen,
        terminating_fallback=fallback,
        left_out=len(infos) - len(chosen),
    )


def _dedupe_addresses(infos: tuple[EndpointInfo, ...]) -> tuple[EndpointInfo, ...]:
    # Two targetRefs claiming one address (a stale slice naming a deleted Pod whose IP was
    # reused) must not double that address's share; the first key in sorted order keeps it.
    seen: set[tuple[str, int]] = set()
    out: list[EndpointInfo] = []
    for i in infos:
        ident = (i.address, i.port)
        if ident in seen:
            continue
        seen.add(ident)
        out.append(i)
    return tuple(out) if len(out) != len(infos) else infos


def build_endpoint_sets(
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    *,
    ip_families: tuple[str, ...] = DEFAULT_IP_FAMILIES,
    weights: Mapping[str, int] | None = None,
) -> dict[SetKey, EndpointSet]:
    """Compute the endpoint set of every port of every Service.

    Slices belong to a Service by their ``kubernetes.io/service-name`` label and namespace,
    so Services without a selector (manually managed slices) work the same way. ExternalName
    Services have no endpoints and get no set.

    Args:
        services: The Services of one snapshot.
        slices: The EndpointSlices of the same snapshot.
        ip_families: Address families to use, most preferred first; slices of other families
            (and all FQDN slices, as kube-proxy ignores them) are skipped.
        weights: Optional per-endpoint weights by address; absent addresses weigh 1.

    Returns:
        One set per (namespace, Service, Service port), including empty ones, so a lookup
        can tell "no endpoints" (503) from "no such Service port".
    """
    families = {f: i for i, f in enumerate(ip_families)}
    by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
    for s in slices:
        if s.service_name:
            by_service.setdefault((s.meta.namespace, s.service_name), []).append(s)
    for group in by_service.values():
        # Slice order must not change which duplicate wins: sort by name, as kube-proxy does.
        group.sort(key=lambda s: s.meta.name)
    out: dict[SetKey, EndpointSet] = {}
    for svc in services:
        if svc.type == "ExternalName":
            continue
        own = by_service.get((svc.meta.namespace, svc.meta.name), [])
        for sp in svc.ports:
            built = _build_one(svc, sp, own, families, weights or {})
            out[built.key] = built
    return out
