"""Compile a snapshot into the ``RoutingTable`` that decides requests.

Compiling is the slow, careful part (attachment, references, policies, status); it runs off
the request path, whenever the snapshot changes, and never raises for bad configuration:
each problem becomes a status condition and the rest of the table keeps serving.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from typing import Final

import attrs

from meshclient.model import GRPCRoute, HTTPRoute, HTTPRouteMatch, HTTPRouteRule, ParentRef, Service
from meshclient.routing import _status as st
from meshclient.routing._attach import attach_to_gateway, attach_to_service
from meshclient.routing._backends import Resolver
from meshclient.routing._decision import (
    EMPTY_PLAN,
    Action,
    Decision,
    ParentInfo,
    Plan,
    RouteInfo,
    Via,
)
from meshclient.routing._hostnames import intersect
from meshclient.routing._listeners import EffectiveListener, GatewayListeners, collect_listeners
from meshclient.routing._request import RequestHead
from meshclient.routing._table import Entry, HostTable, Tier, build_host_table, entry_for
from meshclient.routing._targets import RuleTarget, compile_rule
from meshclient.store import Snapshot

__all__ = ["RoutingOptions", "RoutingTable", "compile_table"]

Hosts = tuple[str | None, ...]
GatewayMap = dict[tuple[str, str], GatewayListeners]
GrpcClaims = dict[tuple[str, ...], list[tuple[GRPCRoute, Hosts]]]

_SCHEME_PROTOCOL: Final = {"http": "HTTP", "https": "HTTPS", "grpc": "HTTP", "grpcs": "HTTPS"}


@attrs.frozen(kw_only=True)
class RoutingOptions:
    """Which Gateways this client acts for, and who the client is."""

    gateways: frozenset[str] = frozenset()
    """``namespace/name`` of Gateways to act for; with ``gateway_classes`` both empty: all."""
    gateway_classes: frozenset[str] = frozenset()
    namespace: str | None = None
    """The client's own namespace: consumer routes and short Service names depend on it."""
    cluster_domain: str = "cluster.local"

    def selects(self, ns: str, name: str, gateway_class: str) -> bool:
        if not self.gateways and not self.gateway_classes:
            return True
        return f"{ns}/{name}" in self.gateways or gateway_class in self.gateway_classes


@attrs.frozen(kw_only=True)
class _ListenerRoutes:
    parent: ParentInfo
    table: HostTable
    not_found: Plan = attrs.field(default=attrs.Factory(
        lambda self: Plan(parent=self.parent, reasons=("no rule matches",)), takes_self=True))


@attrs.frozen(kw_only=True)
class _GatewayPort:
    """One Gateway's listeners on one (protocol, port): listener choice by Host."""

    gateway: str
    exact: dict[str, _ListenerRoutes]
    wildcard: dict[str, _ListenerRoutes]
    any_host: _ListenerRoutes | None

    def listener(self, host: str) -> _ListenerRoutes | None:
        # GW: exact hostname, then the longest wildcard, then the hostname-less listener.
        found = self.exact.get(host)
        if found is not None:
            return found
        i = host.find(".")
        while i >= 0:
            found = self.wildcard.get(host[i:])
            if found is not None:
                return found
            i = host.find(".", i + 1)
        return self.any_host


@attrs.frozen(kw_only=True)
class _Claims:
    """Which hosts on one (protocol, port) belong to which Gateway."""

    exact: dict[str, _GatewayPort]
    wildcard: dict[str, _GatewayPort]

    def lookup(self, host: str) -> _GatewayPort | None:
        found = self.exact.get(host)
        if found is not None:
            return found
        i = host.find(".")
        while i >= 0:
            found = self.wildcard.get(host[i:])
            if found is not None:
                return found
            i = host.find(".", i + 1)
        return None


@attrs.frozen(kw_only=True)
class _ServicePort:
    parent: ParentInfo
    table: HostTable | None
    """None: no route applies, forward to the Service itself."""
    plain: RuleTarget
    not_found: Plan = attrs.field(default=attrs.Factory(
        lambda self: Plan(parent=self.parent, reasons=("no rule of the Service's routes "
                                                        "matches",)), takes_self=True))


@attrs.frozen(kw_only=True)
class RoutingTable:
    """Everything ``decide`` needs, built once per snapshot."""

    version: int
    statuses: tuple[st.ObjectStatus, ...]
    claims: dict[tuple[str, int], _Claims]
    services: dict[str, dict[int, _ServicePort]]
    """Host forms of each Service (``name.ns``, ``…svc.cluster.local``, cluster IPs)."""
    options: RoutingOptions

    _hosts: dict[tuple[str, int, str, str], _HostRoute] = attrs.field(factory=dict, eq=False)
    """Where each (scheme, port, authority, Host) seen leads; bounded, dropped with the table."""

    def decide(self, head: RequestHead) -> Decision:
        """Route one request; never raises for a request it cannot route (passthrough)."""
        key = (head.scheme, head.port, head.authority, head.host)
        found = self._hosts.get(key)
        if found is None:
            found = self._host_route(head)
            if len(self._hosts) >= _HOST_CACHE_SIZE:
                self._hosts.clear()  # a flood of odd hosts costs speed, never memory
            self._hosts[key] = found
        tiers, plan = found
        for tier in tiers:
            entry = tier.find(head)
            if entry is not None:
                return entry.target.decide(head, entry.prefix)
        if plan is None:
            return Decision.make(EMPTY_PLAN, Action.PASSTHROUGH, head)
        if isinstance(plan, RuleTarget):
            return plan.decide(head, None)
        return Decision.make(plan, Action.REJECT, head, 404)

    def _host_route(self, head: RequestHead) -> _HostRoute:
        """The tiers a host walks and what happens when none matches (or no tiers: passthrough)."""
        protocol = _SCHEME_PROTOCOL.get(head.scheme)
        claims = self.claims.get((protocol, head.port)) if protocol else None
        if claims is not None:
            gport = claims.lookup(head.authority)
            if gport is not None:
                listener = gport.listener(head.host)
                if listener is None:
                    return ((), Plan(reasons=(f"no listener of Gateway {gport.gateway} on port "
                                              f"{head.port} matches host {head.host!r}",)))
                return (listener.table.tiers(head.host), listener.not_found)
        ports = self.services.get(head.authority)
        if ports is not None:
            sp = ports.get(head.port)
            if sp is not None:
                if sp.table is None:
                    return ((), sp.plain)
                # GAMMA: routes on this Service port apply; their hostnames do not (G1294).
                return (sp.table.any_host, sp.not_found)
        return ((), None)


_HOST_CACHE_SIZE: Final = 4096
_HostRoute = tuple[tuple[Tier, ...], "Plan | RuleTarget | None"]


def _route_order(route: HTTPRoute | GRPCRoute) -> tuple[float, str]:
    # HR precedence tie-breakers: older first, then "namespace/name" alphabetically.
    return (route.meta.creation, route.meta.ns_name)


@attrs.define
class _Builder:
    snapshot: Snapshot
    options: RoutingOptions
    resolver: Resolver
    statuses: list[st.ObjectStatus] = attrs.field(factory=list)
    # listener identity → (EffectiveListener, host → [(match, entry)])
    listener_entries: dict[tuple[str, ...], tuple[EffectiveListener,
                           dict[str | None, list[tuple[HTTPRouteMatch, Entry]]]]] = attrs.field(
        factory=dict)
    # (svc ns, svc name, port) → (producer entries, {consumer ns: entries})
    mesh_entries: dict[tuple[str, str, int], tuple[list[tuple[HTTPRouteMatch, Entry]],
                       dict[str, list[tuple[HTTPRouteMatch, Entry]]]]] = attrs.field(factory=dict)
    grpc_ports: set[tuple[str, str, int]] = attrs.field(factory=set)
    # GRPCRoute status index → (route, listener keys it attached to through that parentRef)
    grpc_refs: list[tuple[int, GRPCRoute, tuple[tuple[str, ...], ...]]] = attrs.field(
        factory=list)
    # (GRPCRoute namespace/name, listener key) where an older HTTPRoute holds the hostnames
    grpc_lost: set[tuple[str, tuple[str, ...]]] = attrs.field(factory=set)

    def listener_key(self, el: EffectiveListener) -> tuple[str, ...]:
        return (el.gateway.meta.namespace, el.gateway.meta.name, el.owner_kind,
                el.owner_namespace, el.owner_name, el.listener.name)


def compile_table(snapshot: Snapshot, options: RoutingOptions | None = None) -> RoutingTable:
    """Compile ``snapshot``; problems become statuses, never exceptions."""
    with _collector_paused():
        return _compile(snapshot, options or RoutingOptions())


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # Compiling allocates hundreds of thousands of small objects that all stay alive; the
    # cyclic collector would rescan them again and again (a third of a 10,000-route compile).
    # Nothing built here forms cycles that need collecting, so pause it for the duration.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(snapshot: Snapshot, options: RoutingOptions) -> RoutingTable:
    resolver = Resolver(snapshot)
    b = _Builder(snapshot=snapshot, options=options, resolver=resolver)
    all_gateways = {k: g for k, g in snapshot.of("Gateway").items()
                    if type(g).__name__ == "Gateway"}
    gateways = collect_listeners(snapshot, all_gateways, b.statuses)  # type: ignore[arg-type]

    http_routes = sorted((r for r in snapshot.of("HTTPRoute").values()
                          if isinstance(r, HTTPRoute)), key=_route_order)
    grpc_routes = sorted((r for r in snapshot.of("GRPCRoute").values()
                          if isinstance(r, GRPCRoute)), key=_route_order)
    grpc_claims = _grpc_claims(b, grpc_routes, gateways)
    for route in http_routes:
        _compile_http_route(b, route, gateways, grpc_claims)
    _settle_grpc_losers(b)

    claims = _build_claims(b, gateways)
    services = _build_services(b)
    b.statuses.extend(resolver.statuses)
    return RoutingTable(version=snapshot.version, statuses=tuple(b.statuses), claims=claims,
                        services=services, options=options)


def _grpc_claims(b: _Builder, routes: Iterable[GRPCRoute], gateways: GatewayMap) -> GrpcClaims:
    """Attach GRPCRoutes for status and for HTTPRoute/GRPCRoute conflicts (§1.6, §7.3)."""
    claims: GrpcClaims = {}
    for route in routes:
        for ref in route.parent_refs:
            if ref.is_service:
                att = attach_to_service(route, ref, b.resolver.services)
                for port in att.ports:
                    assert att.service is not None
                    b.grpc_ports.add((att.service.meta.namespace, att.service.meta.name, port))
                cond = att.condition
            else:
                gatt = attach_to_gateway(b.snapshot, route, ref, gateways)
                if gatt is None:
                    continue
                for el, hosts in gatt.listeners:
                    claims.setdefault(b.listener_key(el), []).append((route, hosts))
                cond = gatt.condition
                b.grpc_refs.append((len(b.statuses), route,
                                    tuple(b.listener_key(el) for el, _ in gatt.listeners)))
            b.statuses.append(st.ObjectStatus(
                kind="GRPCRoute", namespace=route.meta.namespace, name=route.meta.name,
                parent=ref.describe(), conditions=(cond, st.Condition(
                    type="ResolvedRefs", status="True", reason=st.RESOLVED_REFS,
                    message="GRPCRoute requests are sent through the gateway: gRPC routing "
                    "is not implemented by meshclient yet"))))
    return claims


def _settle_grpc_losers(b: _Builder) -> None:
    """GRPCRoutes beaten by an older HTTPRoute on every listener are not accepted (GR)."""
    for index, route, lkeys in b.grpc_refs:
        if not lkeys or not all((route.meta.ns_name, k) in b.grpc_lost for k in lkeys):
            continue
        old = b.statuses[index]
        lost = st.Condition(type="Accepted", status="False", reason=st.CONFLICTED,
                            message="an older HTTPRoute holds these hostnames on every "
                            "listener")
        b.statuses[index] = attrs.evolve(old, conditions=(lost, *old.conditions[1:]))


def _compile_http_route(b: _Builder, route: HTTPRoute, gateways: GatewayMap,
                        grpc_claims: GrpcClaims) -> None:
    valid_rules = [r for r in route.rules if not r.errors]
    dropped = [r for r in route.rules if r.errors]
    for ref in route.parent_refs:
        parent_desc = ref.describe()
        if route.errors:
            b.statuses.append(_route_status(route, parent_desc, st.Condition(
                type="Accepted", status="False", reason=_reason(route.errors[0].reason),
                message=str(route.errors[0])), (), dropped, valid_rules))
            continue
        if not valid_rules:
            first = dropped[0].errors[0]
            b.statuses.append(_route_status(route, parent_desc, st.Condition(
                type="Accepted", status="False", reason=_reason(first.reason),
                message=f"every rule is invalid; first: {first}"), (), dropped, valid_rules))
            continue
        if ref.is_service:
            _attach_mesh(b, route, ref, valid_rules, dropped)
            continue
        att = attach_to_gateway(b.snapshot, route, ref, gateways)
        if att is None:
            if ref.kind in ("Gateway", "ListenerSet"):
                b.statuses.append(_route_status(route, parent_desc, st.Condition(
                    type="Accepted", status="False", reason=st.NO_MATCHING_PARENT,
                    message=f"{ref.kind} {ref.namespace}/{ref.name} not found"), (), dropped,
                    valid_rules))
            continue
        problems: list[str] = []
        condition = att.condition
        kept = 0
        for el, hosts in att.listeners:
            lkey = b.listener_key(el)
            older = [g for g, ghosts in grpc_claims.get(lkey, ())
                     if _route_order(g) < _route_order(route) and _hosts_overlap(hosts, ghosts)]
            if older:
                # GR: HTTPRoute and GRPCRoute on one listener with overlapping hostnames:
                # the older route is accepted, the other is not.
                continue
            kept += 1
            b.grpc_lost.update(
                (g.meta.ns_name, lkey) for g, ghosts in grpc_claims.get(lkey, ())
                if _route_order(route) < _route_order(g) and _hosts_overlap(hosts, ghosts))
            gw = el.gateway
            if not b.options.selects(gw.meta.namespace, gw.meta.name, gw.gateway_class):
                continue
            parent = ParentInfo(kind=ref.kind, namespace=ref.namespace, name=ref.name,
                                section=el.listener.name)
            address = gw.addresses[0] if gw.addresses else None
            _, by_host = b.listener_entries.setdefault(lkey, (el, {}))
            for rule in valid_rules:
                target = compile_rule(route, rule, parent, b.resolver, mesh=False,
                                      gateway_address=address)
                problems.extend(target.problems)
                for mi, match in enumerate(rule.matches):
                    entry = entry_for(target, match, (*_route_order(route), rule.index, mi))
                    for host in hosts:
                        by_host.setdefault(host, []).append((match, entry))
        if att.listeners and not kept:
            condition = st.Condition(type="Accepted", status="False", reason=st.CONFLICTED,
                                     message="an older GRPCRoute holds these hostnames on "
                                     "every listener")
        if not att.listeners:
            problems = _static_problems(b, route, valid_rules, mesh=False)
        b.statuses.append(_route_status(route, parent_desc, condition, problems, dropped,
                                        valid_rules))


def _static_problems(b: _Builder, route: HTTPRoute, rules: list[HTTPRouteRule], *,
                     mesh: bool) -> list[str]:
    parent = ParentInfo(kind="Gateway", namespace="", name="")
    out: list[str] = []
    for rule in rules:
        out.extend(compile_rule(route, rule, parent, b.resolver, mesh=mesh,
                                gateway_address=None).problems)
    return out


def _hosts_overlap(a: Hosts, b: Hosts) -> bool:
    return any(intersect(x, y) is not False for x in a for y in b)


def _attach_mesh(b: _Builder, route: HTTPRoute, ref: ParentRef, valid_rules: list[HTTPRouteRule],
                 dropped: list[HTTPRouteRule]) -> None:
    att = attach_to_service(route, ref, b.resolver.services)
    problems: list[str] = []
    condition = att.condition
    if att.service is not None and att.ports:
        svc = att.service
        parent = ParentInfo(kind="Service", namespace=svc.meta.namespace, name=svc.meta.name,
                            section=ref.section_name)
        conflicted = [p for p in att.ports
                      if (svc.meta.namespace, svc.meta.name, p) in b.grpc_ports]
        if conflicted and len(conflicted) == len(att.ports):
            # G1294: GRPCRoute > HTTPRoute on one Service port; the loser is Conflicted.
            condition = st.Condition(type="Accepted", status="False", reason=st.CONFLICTED,
                                     message=f"GRPCRoutes attach to port(s) {conflicted}")
        for port in att.ports:
            if port in conflicted:
                continue
            producers, consumers = b.mesh_entries.setdefault(
                (svc.meta.namespace, svc.meta.name, port), ([], {}))
            bucket = producers if att.producer else consumers.setdefault(
                route.meta.namespace, [])
            for rule in valid_rules:
                target = compile_rule(route, rule, parent, b.resolver, mesh=True,
                                      gateway_address=None)
                problems.extend(target.problems)
                for mi, match in enumerate(rule.matches):
                    entry = entry_for(target, match, (*_route_order(route), rule.index, mi))
                    bucket.append((match, entry))
    b.statuses.append(_route_status(route, ref.describe(), condition, problems, dropped,
                                    valid_rules))


def _reason(reason: str) -> str:
    # Route conditions know UnsupportedValue, not the generic "Invalid" of object errors.
    return st.UNSUPPORTED_VALUE if reason == "Invalid" else reason


def _route_status(route: HTTPRoute, parent: str, accepted: st.Condition,
                  problems: Iterable[str], dropped: list[HTTPRouteRule],
                  valid: list[HTTPRouteRule]) -> st.ObjectStatus:
    conds = [accepted]
    problems = list(dict.fromkeys(problems))
    if problems:
        reason = problems[0].split(":", 1)[0]
        if reason not in (st.REF_NOT_PERMITTED, st.INVALID_KIND, st.BACKEND_NOT_FOUND,
                          st.UNSUPPORTED_PROTOCOL):
            reason = st.BACKEND_NOT_FOUND if reason.startswith("mirror") else "RefNotResolved"
            if problems[0].startswith("mirror "):
                reason = problems[0][len("mirror "):].split(":", 1)[0]
        conds.append(st.Condition(type="ResolvedRefs", status="False", reason=reason,
                                  message="; ".join(problems)))
    else:
        conds.append(st.Condition(type="ResolvedRefs", status="True", reason=st.RESOLVED_REFS))
    if dropped and valid and accepted.status == "True":
        # SH: PartiallyInvalid is only ever set True, and says which rules were dropped.
        conds.append(st.Condition(
            type="PartiallyInvalid", status="True", reason=_reason(dropped[0].errors[0].reason),
            message="Dropped Rule(s) " + ", ".join(str(r.index) for r in dropped) + ": "
            + "; ".join(str(e) for r in dropped for e in r.errors)))
    return st.ObjectStatus(kind="HTTPRoute", namespace=route.meta.namespace,
                           name=route.meta.name, parent=parent, conditions=tuple(conds))


def _build_claims(b: _Builder, gateways: GatewayMap) -> dict[tuple[str, int], _Claims]:
    """Index listeners by (protocol, port) and by the hostnames they or their routes name."""
    # Per gateway and (protocol, port): listener hostname → routes table.
    ports: dict[tuple[str, str, str, int], dict[str | None, _ListenerRoutes]] = {}
    named: dict[tuple[str, str, str, int], set[str]] = {}
    gateway_order: dict[tuple[str, str], tuple[float, str]] = {}
    addresses: dict[tuple[str, str], tuple[str, ...]] = {}
    for gl in gateways.values():
        gw = gl.gateway
        if not b.options.selects(gw.meta.namespace, gw.meta.name, gw.gateway_class):
            continue
        gkey = (gw.meta.namespace, gw.meta.name)
        gateway_order[gkey] = (gw.meta.creation, gw.meta.ns_name)
        addresses[gkey] = gw.addresses
        listeners = [*gl.own, *(el for els in gl.by_listener_set.values() for el in els)]
        for el in listeners:
            if el.listener.protocol not in ("HTTP", "HTTPS"):
                continue
            pkey = (*gkey, el.listener.protocol, el.listener.port)
            by_host = b.listener_entries.get(b.listener_key(el), (el, {}))[1]
            parent = ParentInfo(kind=el.owner_kind, namespace=el.owner_namespace,
                                name=el.owner_name, section=el.listener.name)
            # Listener isolation: an empty listener still owns its hostname (404s).
            ports.setdefault(pkey, {}).setdefault(
                el.listener.hostname,
                _ListenerRoutes(parent=parent, table=build_host_table(by_host)))
            names = named.setdefault(pkey, set())
            names.update(h for h in by_host if h is not None)
            if el.listener.hostname is not None:
                names.add(el.listener.hostname)

    claims: dict[tuple[str, int], _Claims] = {}
    # Older Gateways claim contested hostnames first.
    for pkey in sorted(ports, key=lambda k: gateway_order[(k[0], k[1])]):
        ns, name, protocol, port = pkey
        by_hostname = ports[pkey]
        gport = _GatewayPort(
            gateway=f"{ns}/{name}",
            exact={h: lr for h, lr in by_hostname.items() if h is not None and h[0] != "*"},
            wildcard={h[1:]: lr for h, lr in by_hostname.items()
                      if h is not None and h[0] == "*"},
            any_host=by_hostname.get(None),
        )
        c = claims.setdefault((protocol, port), _Claims(exact={}, wildcard={}))
        for host in sorted(named.get(pkey, ())):
            if host.startswith("*."):
                c.wildcard.setdefault(host[1:], gport)
            else:
                c.exact.setdefault(host, gport)
        for address in addresses[(ns, name)]:
            c.exact.setdefault(address.lower(), gport)
    return claims


def _build_services(b: _Builder) -> dict[str, dict[int, _ServicePort]]:
    out: dict[str, dict[int, _ServicePort]] = {}
    client_ns = b.options.namespace
    domain = b.options.cluster_domain
    for (ns, name), svc in sorted(b.resolver.services.items()):
        if svc.headless or svc.type == "ExternalName" or not svc.ports:
            continue
        ports: dict[int, _ServicePort] = {}
        for p in svc.ports:
            parent = ParentInfo(kind="Service", namespace=ns, name=name, section=p.name or None)
            producers, consumers = b.mesh_entries.get((ns, name, p.port), ([], {}))
            chosen = producers
            if client_ns is not None and client_ns != ns and consumers.get(client_ns):
                # G1686: a client's own (consumer) routes shadow the producer's for it.
                chosen = consumers[client_ns]
            table = build_host_table({None: chosen}) if chosen else None
            if (ns, name, p.port) in b.grpc_ports:
                plain = RuleTarget(
                    route=RouteInfo(kind="GRPCRoute", namespace=ns, name=name),
                    parent=parent, action=Action.REJECT, status=500,
                    reasons=("GRPCRoutes attach to this Service port and gRPC routing is not "
                             "implemented by meshclient yet",))
                table = None
            else:
                plain = _plain_target(b, svc, p.port, parent)
            ports[p.port] = _ServicePort(parent=parent, table=table, plain=plain)
        forms = [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{domain}",
                 *svc.cluster_ips]
        if client_ns == ns:
            forms.append(name)
        for form in forms:
            out.setdefault(form.lower(), ports)
    return out


def _plain_target(b: _Builder, svc: Service, port: int, parent: ParentInfo) -> RuleTarget:
    backend = b.resolver.service_backend(svc, port)
    if not backend.valid:
        return RuleTarget(route=None, parent=parent, action=Action.REJECT, status=500,
                          reasons=(backend.reason or "",))
    return RuleTarget(route=None, parent=parent, backends=(backend,), via=Via.DIRECT)
