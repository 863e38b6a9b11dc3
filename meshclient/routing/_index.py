"""The request-time index: which hosts are whose, and Service host forms (§1, §7)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs

from meshclient.model import Service
from meshclient.routing._backends import Resolver
from meshclient.routing._builder import Builder, GatewayMap
from meshclient.routing._decision import (
    Action,
    ParentInfo,
    Plan,
    Via,
)
from meshclient.routing._grpc import build_grpc_tier
from meshclient.routing._table import HostTable, build_host_table
from meshclient.routing._targets import RuleTarget

T = TypeVar("T")

__all__ = [
    "Claims",
    "ClaimsIndex",
    "GatewayPort",
    "ListenerRoutes",
    "PortKey",
    "ServiceHosts",
    "ServicePort",
    "build_claims",
    "gateway_port",
]


@attrs.frozen(kw_only=True)
class ListenerRoutes:
    parent: ParentInfo
    table: HostTable
    grpc: HostTable | None = None
    """GRPCRoute entries on this listener; gRPC calls use them where a host has any."""
    not_found: Plan = attrs.field(
        default=attrs.Factory(
            lambda self: Plan(parent=self.parent, reasons=("no rule matches",)), takes_self=True
        )
    )


def by_host(exact: Mapping[str, T], wildcard: Mapping[str, T], host: str) -> T | None:
    """The exact entry for ``host``, else the longest wildcard (``.suffix`` keys) covering it."""
    found = exact.get(host)
    if found is not None:
        return found
    i = host.find(".")
    while i >= 0:
        found = wildcard.get(host[i:])
        if found is not None:
            return found
        i = host.find(".", i + 1)
    return None


@attrs.frozen(kw_only=True)
class GatewayPort:
    """One Gateway's listeners on one (protocol, port): listener choice by Host."""

    gateway: str
    exact: dict[str, ListenerRoutes]
    wildcard: dict[str, ListenerRoutes]
    any_host: ListenerRoutes | None

    def listener(self, host: str) -> ListenerRoutes | None:
        # GW: exact hostname, then the longest wildcard, then the hostname-less listener.
        found = by_host(self.exact, self.wildcard, host)
        return self.any_host if found is None else found


@attrs.frozen(kw_only=True)
class Claims:
    """Which hosts on one (protocol, port) belong to which Gateway."""

    exact: dict[str, GatewayPort]
    wildcard: dict[str, GatewayPort]

    def lookup(self, host: str) -> GatewayPort | None:
        return by_host(self.exact, self.wildcard, host)


@attrs.frozen(kw_only=True)
class ServicePort:
    parent: ParentInfo
    table: HostTable | None
    """None: no route applies, forward to the Service itself."""
    plain: RuleTarget
    grpc: HostTable | None = None
    """GRPCRoutes on this port: they outrank HTTPRoutes here and serve every call (G1294)."""
    not_found: Plan = attrs.field(
        default=attrs.Factory(
            lambda self: Plan(
                parent=self.parent, reasons=("no rule of the Service's routes matches",)
            ),
            takes_self=True,
        )
    )


PortKey = tuple[str, str, str, int]
"""(gateway namespace, gateway name, protocol, port)."""


@attrs.define(kw_only=True)
class ClaimsIndex:
    """How ``build_claims`` arrived at its answer, kept so one route's change can patch it."""

    ports: dict[PortKey, dict[str | None, ListenerRoutes]]
    """Per Gateway port: listener hostname → that listener's routes."""
    owners: dict[PortKey, dict[str | None, tuple[str, ...]]]
    """Which listener (by key) each of those ListenerRoutes was built from."""
    listeners: dict[PortKey, list[tuple[str, ...]]]
    """Every HTTP(S) listener on the Gateway port, in order."""
    port_of: dict[tuple[str, ...], PortKey]
    named: dict[PortKey, set[str]]
    """Hostnames the Gateway port claims: its listeners' and its routes'."""
    order: list[PortKey]
    """Gateway ports, oldest Gateway first: the first to name a host claims it."""
    addresses: dict[PortKey, tuple[str, ...]]
    gports: dict[PortKey, GatewayPort]


def build_claims(b: Builder, gateways: GatewayMap) -> tuple[dict[tuple[str, int], Claims],
                                                            ClaimsIndex]:
    """Index listeners by (protocol, port) and by the hostnames they or their routes name."""
    ports: dict[PortKey, dict[str | None, ListenerRoutes]] = {}
    owners: dict[PortKey, dict[str | None, tuple[str, ...]]] = {}
    listener_keys: dict[PortKey, list[tuple[str, ...]]] = {}
    port_of: dict[tuple[str, ...], PortKey] = {}
    named: dict[PortKey, set[str]] = {}
    gateway_order: dict[tuple[str, str], tuple[float, str]] = {}
    addresses: dict[tuple[str, str], tuple[str, ...]] = {}
    for gl in gateways.values():
        gw = gl.gateway
        if not b.options.selects(gw.meta.namespace, gw.meta.name, gw.gateway_class):
            continue
        gkey = (gw.meta.namespace, gw.meta.name)
        gateway_order[gkey] = (gw.meta.creation, gw.meta.ns_name)
        addresses[gkey] = tuple(a.lower() for a in gw.addresses)
        listeners = [*gl.own, *(el for els in gl.by_listener_set.values() for el in els)]
        for el in listeners:
            if el.listener.protocol not in ("HTTP", "HTTPS"):
                continue
            pkey = (*gkey, el.listener.protocol, el.listener.port)
            lkey = el.key
            listener_keys.setdefault(pkey, []).append(lkey)
            port_of.setdefault(lkey, pkey)
            by_host = b.listener_entries.get(lkey, (el, {}))[1]
            grpc_by_host = b.grpc_listener_entries.get(lkey, {})
            # Listener isolation: an empty listener still owns its hostname (404s).
            hostname = el.listener.hostname
            if hostname not in ports.setdefault(pkey, {}):
                ports[pkey][hostname] = ListenerRoutes(
                    parent=ParentInfo(kind=el.owner_kind, namespace=el.owner_namespace,
                                      name=el.owner_name, section=el.listener.name),
                    table=build_host_table(by_host, b.tier),
                    grpc=build_host_table(grpc_by_host, build_grpc_tier) if grpc_by_host else None,
                )
                owners.setdefault(pkey, {})[hostname] = lkey
            names = named.setdefault(pkey, set())
            names.update(h for h in by_host if h is not None)
            names.update(h for h in grpc_by_host if h is not None)
            if hostname is not None:
                names.add(hostname)

    # Older Gateways claim contested hostnames first.
    order = sorted(ports, key=lambda k: gateway_order[(k[0], k[1])])
    index = ClaimsIndex(ports=ports, owners=owners, listeners=listener_keys, port_of=port_of,
                        named=named, order=order,
                        addresses={pkey: addresses[(pkey[0], pkey[1])] for pkey in order},
                        gports={pkey: gateway_port(pkey, ports[pkey]) for pkey in order})
    claims: dict[tuple[str, int], Claims] = {}
    for pkey in order:
        gport = index.gports[pkey]
        c = claims.setdefault((pkey[2], pkey[3]), Claims(exact={}, wildcard={}))
        for host in sorted(named.get(pkey, ())):
            if host.startswith("*."):
                c.wildcard.setdefault(host[1:], gport)
            else:
                c.exact.setdefault(host, gport)
        for address in index.addresses[pkey]:
            c.exact.setdefault(address, gport)
    return claims, index


def gateway_port(pkey: PortKey, by_hostname: Mapping[str | None, ListenerRoutes]) -> GatewayPort:
    return GatewayPort(
        gateway=f"{pkey[0]}/{pkey[1]}",
        exact={h: lr for h, lr in by_hostname.items() if h is not None and h[0] != "*"},
        wildcard={h[1:]: lr for h, lr in by_hostname.items() if h is not None and h[0] == "*"},
        any_host=by_hostname.get(None),
    )


MeshEntries = Mapping[tuple[str, str, int], tuple[Sequence[Any], Mapping[str, Sequence[Any]]]]


class ServiceHosts:
    """The Services a request host names (SPEC-NOTES §7), and their ports' routes.

    A host names a Service as ``name.ns``, ``name.ns.svc``, ``name.ns.svc.<domain>``, by a
    cluster IP, or by its bare name in the client's own namespace. Each Service's ports are
    built the first time a request names it, not at compile time: building them for every
    Service was a fifth of a 10,000-route compile, for Services most clients never call by
    Service name. Threads racing on a first lookup may both build; the results are equal.
    """

    def __init__(self, b: Builder) -> None:
        # Only what building ports needs: keeping the Builder would keep the tables it
        # reused from alive too.
        self._resolver = b.resolver
        self._mesh: MeshEntries = b.mesh_entries
        self._grpc_mesh = b.grpc_mesh_entries
        self._namespace = b.options.namespace
        self._suffix = ".svc." + b.options.cluster_domain
        self._services = {k: svc for k, svc in b.resolver.services.items()
                          if not svc.headless and svc.type != "ExternalName" and svc.ports}
        self._ips: dict[str, tuple[str, str]] = {}
        self._folded: dict[tuple[str, str], tuple[str, str]] = {}
        for key, svc in self._services.items():
            for address in svc.cluster_ips:
                ip = address.lower()
                held = self._ips.get(ip)
                if held is None or key < held:  # a shared IP goes to the first by name
                    self._ips[ip] = key
            ns, name = key
            if ns != ns.lower() or name != name.lower():
                self._folded.setdefault((ns.lower(), name.lower()), key)
        self._ports: dict[tuple[str, str], dict[int, ServicePort]] = {}

    def __len__(self) -> int:
        return len(self._services)

    def patched(self, mesh: MeshEntries, changed: set[tuple[str, str]]) -> ServiceHosts:
        """These Services with new Service-parent entries: ``changed`` ones build again."""
        new = copy.copy(self)  # shares the Services and address maps, which did not change
        new._mesh = mesh
        folded = {(ns.lower(), name.lower()) for ns, name in changed}
        new._ports = {k: v for k, v in self._ports.items()
                      if k not in changed and k not in folded}
        return new

    def get(self, host: str) -> dict[int, ServicePort] | None:
        """The ports of the Service ``host`` (lower case) names, or None."""
        key = self._ips.get(host) or self._key(host)
        if key is None:
            return None
        ports = self._ports.get(key)
        if ports is None:
            svc = self._services.get(key) or self._services.get(self._folded.get(key, key))
            if svc is None:
                return None
            ports = self._ports[key] = _service_ports(
                self._resolver, self._mesh, self._grpc_mesh, svc, self._namespace)
        return ports

    def _key(self, host: str) -> tuple[str, str] | None:
        if host.endswith(self._suffix):
            host = host[: -len(self._suffix)]
        elif host.endswith(".svc"):
            host = host[:-4]
        name, dot, ns = host.partition(".")
        if not dot:
            return (self._namespace, name) if self._namespace is not None else None
        return None if "." in ns else (ns, name)

    def canonical(self) -> list[tuple[str, dict[int, ServicePort]]]:
        """Every Service under its full name (``name.ns.svc.<domain>``), sorted."""
        out = []
        for ns, name in sorted(self._services):
            host = f"{name}.{ns}{self._suffix}".lower()
            ports = self.get(host)
            if ports is not None:
                out.append((host, ports))
        return out


def _service_ports(resolver: Resolver, mesh: MeshEntries, grpc_mesh: MeshEntries,
                   svc: Service, client_ns: str | None) -> dict[int, ServicePort]:
    ns, name = svc.meta.namespace, svc.meta.name
    ports: dict[int, ServicePort] = {}
    for p in svc.ports:
        parent = ParentInfo(kind="Service", namespace=ns, name=name, section=p.name or None)
        producers, consumers = mesh.get((ns, name, p.port), ((), {}))
        chosen = producers
        if client_ns is not None and client_ns != ns and consumers.get(client_ns):
            # G1686: a client's own (consumer) routes shadow the producer's for it.
            chosen = consumers[client_ns]
        table = build_host_table({None: chosen}) if chosen else None
        grpc_producers, grpc_consumers = grpc_mesh.get((ns, name, p.port), ((), {}))
        grpc_chosen = grpc_producers
        if client_ns is not None and client_ns != ns and grpc_consumers.get(client_ns):
            grpc_chosen = grpc_consumers[client_ns]
        grpc = None
        if grpc_chosen:
            # G1294: GRPCRoute > HTTPRoute on one Service port.
            grpc = build_host_table({None: grpc_chosen}, build_grpc_tier)
            table = None
        ports[p.port] = ServicePort(parent=parent, table=table, grpc=grpc,
                                    plain=_plain_target(resolver, svc, p.port, parent))
    return ports


def _plain_target(resolver: Resolver, svc: Service, port: int, parent: ParentInfo
                  ) -> RuleTarget:
    backend = resolver.service_backend(svc, port)
    if not backend.valid:
        return RuleTarget(
            route=None,
            parent=parent,
            action=Action.REJECT,
            status=500,
            reasons=(backend.reason or "",),
        )
    return RuleTarget(route=None, parent=parent, backends=(backend,), via=Via.DIRECT)
