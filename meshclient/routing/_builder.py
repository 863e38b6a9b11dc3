"""Shared state and helpers of one compile: options, the builder, route status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from meshclient.model import (
    Gateway,
    GRPCRoute,
    GRPCRouteRule,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    ParentRef,
)
from meshclient.routing import _status as st
from meshclient.routing._backends import Resolver
from meshclient.routing._decision import ParentInfo
from meshclient.routing._hostnames import intersect
from meshclient.routing._listeners import EffectiveListener, GatewayListeners
from meshclient.routing._table import Entry, Tier, build_tier, entry_for
from meshclient.routing._targets import RuleTarget, compile_rule
from meshclient.store import Snapshot

__all__ = [
    "Builder",
    "GatewayMap",
    "GrpcClaims",
    "Hosts",
    "RoutingOptions",
    "hosts_overlap",
    "reason_of",
    "route_order",
    "route_status",
]

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


def route_order(route: HTTPRoute | GRPCRoute) -> tuple[float, str]:
    # HR precedence tie-breakers: older first, then "namespace/name" alphabetically.
    return (route.meta.creation, route.meta.ns_name)


_RESOLVED = st.Condition(type="ResolvedRefs", status="True", reason=st.RESOLVED_REFS)

RuleKey = tuple[int, int, ParentInfo, bool, "str | None", "str | None"]


@attrs.define
class Builder:
    snapshot: Snapshot
    options: RoutingOptions
    resolver: Resolver
    statuses: list[st.ObjectStatus] = attrs.field(factory=list)
    # listener identity → (EffectiveListener, host → [(match, entry)])
    listener_entries: dict[
        tuple[str, ...],
        tuple[EffectiveListener, dict[str | None, list[tuple[HTTPRouteMatch, Entry]]]],
    ] = attrs.field(factory=dict)
    # (svc ns, svc name, port) → (producer entries, {consumer ns: entries})
    mesh_entries: dict[
        tuple[str, str, int],
        tuple[list[tuple[HTTPRouteMatch, Entry]], dict[str, list[tuple[HTTPRouteMatch, Entry]]]],
    ] = attrs.field(factory=dict)
    grpc_ports: set[tuple[str, str, int]] = attrs.field(factory=set)
    # listener identity → host → gRPC entries (GRPCRoutes are never merged with HTTPRoutes)
    grpc_listener_entries: dict[tuple[str, ...], dict[str | None, list[Any]]] = attrs.field(
        factory=dict)
    # (svc ns, svc name, port) → (producer gRPC entries, {consumer ns: entries})
    grpc_mesh_entries: dict[tuple[str, str, int], tuple[list[Any], dict[str, list[Any]]]] = (
        attrs.field(factory=dict))
    # (status index, route, parentRef, attachment) of every GRPCRoute parent, compiled later
    grpc_pending: list[tuple[int, GRPCRoute, ParentRef, object]] = attrs.field(factory=list)
    # GRPCRoute status index → (route, listener keys it attached to through that parentRef)
    grpc_refs: list[tuple[int, GRPCRoute, tuple[tuple[str, ...], ...]]] = attrs.field(factory=list)
    # (GRPCRoute namespace/name, listener key) where an older HTTPRoute holds the hostnames
    grpc_lost: set[tuple[str, tuple[str, ...]]] = attrs.field(factory=set)

    # Rule targets of the previous table, reusable when nothing they resolve against changed.
    reusable: Mapping[RuleKey, tuple[object, RuleTarget]] = attrs.field(factory=dict)
    targets: dict[RuleKey, tuple[object, RuleTarget]] = attrs.field(factory=dict)
    reusable_entries: Mapping[tuple[int, int], tuple[RuleTarget, Entry]] = attrs.field(
        factory=dict)
    entries: dict[tuple[int, int], tuple[RuleTarget, Entry]] = attrs.field(factory=dict)
    # Per HTTPRoute (by id, the object kept alongside): what compiling it added to the table.
    reusable_routes: Mapping[int, tuple[object, list[tuple[Any, ...]]]] = attrs.field(
        factory=dict)
    routes: dict[int, tuple[object, list[tuple[Any, ...]]]] = attrs.field(factory=dict)
    log: list[tuple[Any, ...]] | None = None
    # Tiers by the identities of their entries, for reuse.
    reusable_tiers: Mapping[tuple[int, ...], Tier] = attrs.field(factory=dict)
    tiers: dict[tuple[int, ...], Tier] = attrs.field(factory=dict)
    _parents: dict[tuple[str, str, str, str | None], ParentInfo] = attrs.field(factory=dict)
    # Each HTTPRoute's statuses, by (namespace, name), in compile order.
    route_statuses: dict[tuple[str, str], tuple[st.ObjectStatus, ...]] = attrs.field(
        factory=dict)

    def tier(self, items: Sequence[tuple[HTTPRouteMatch, Entry]]) -> Tier:
        """``build_tier``, reusing the previous table's tier for the very same entries.

        The key holds entry ids; the tier it maps to holds the entries themselves, so no id
        in a live key can belong to another object.
        """
        key = tuple(id(e) for _, e in items)
        found = self.reusable_tiers.get(key)
        if found is None:
            found = build_tier(items)
        self.tiers[key] = found
        return found

    def rule_target(
        self,
        route: HTTPRoute | GRPCRoute,
        rule: HTTPRouteRule | GRPCRouteRule,
        parent: ParentInfo,
        *,
        mesh: bool,
        gateway_address: str | None,
        parent_unsupported: str | None = None,
    ) -> RuleTarget:
        """``compile_rule``, reusing the previous table's result for an unchanged route."""
        key = (id(route), rule.index, parent, mesh, gateway_address, parent_unsupported)
        # A first compile has nothing to reuse: skip hashing the key for it.
        found = self.reusable.get(key) if self.reusable else None
        # The route object is kept with its target, so its id cannot have been reused.
        if found is None or found[0] is not route:
            found = (route, compile_rule(route, rule, parent, self.resolver, mesh=mesh,
                                         gateway_address=gateway_address,
                                         parent_unsupported=parent_unsupported))
        self.targets[key] = found
        if self.log is not None:
            self.log.append(("target", key, found))
        return found[1]

    def entry(self, target: RuleTarget, match: HTTPRouteMatch, order: tuple[object, ...],
              index: int) -> Entry:
        """``entry_for``, reusing the previous table's entry for a reused target."""
        key = (id(target), index)
        found = self.reusable_entries.get(key) if self.reusable_entries else None
        if found is None or found[0] is not target:
            found = (target, entry_for(target, match, order))
        self.entries[key] = found
        if self.log is not None:
            self.log.append(("entry", key, found))
        return found[1]

    # -- what a route contributes, recorded so an unchanged route can replay it ----------

    def add_status(self, status: st.ObjectStatus) -> None:
        self.statuses.append(status)
        if self.log is not None:
            self.log.append(("status", status))

    def add_listener_entry(self, lkey: tuple[str, ...], el: EffectiveListener,
                           host: str | None, match: HTTPRouteMatch, entry: Entry) -> None:
        self.listener_entries.setdefault(lkey, (el, {}))[1].setdefault(host, []).append(
            (match, entry))
        if self.log is not None:
            self.log.append(("listener", lkey, el, host, match, entry))

    def add_mesh_entry(self, key: tuple[str, str, int], consumer: str | None,
                       match: HTTPRouteMatch, entry: Entry) -> None:
        producers, consumers = self.mesh_entries.setdefault(key, ([], {}))
        bucket = producers if consumer is None else consumers.setdefault(consumer, [])
        bucket.append((match, entry))
        if self.log is not None:
            self.log.append(("mesh", key, consumer, match, entry))

    def add_grpc_lost(self, lost: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        lost = list(lost)
        if not lost:
            return
        self.grpc_lost.update(lost)
        if self.log is not None and lost:
            self.log.append(("lost", lost))

    def replay(self, log: Sequence[tuple[Any, ...]]) -> None:
        """Apply what an unchanged route contributed to the previous table."""
        for op in log:
            kind = op[0]
            if kind == "listener":
                self.add_listener_entry(*op[1:])
            elif kind == "target":
                self.targets[op[1]] = op[2]
            elif kind == "entry":
                self.entries[op[1]] = op[2]
            elif kind == "status":
                self.add_status(op[1])
            elif kind == "mesh":
                self.add_mesh_entry(*op[1:])
            else:
                self.add_grpc_lost(op[1])

    @staticmethod
    def gateway_unsupported(gw: Gateway) -> str | None:
        """Why a Gateway's routes cannot be served in-process, or None."""
        if gw.backend_client_certificate is not None:
            # GW spec.tls.backend: backends expect the gateway's own client certificate,
            # which a client cannot present; skipping it would silently drop the policy.
            return (f"Gateway {gw.meta.ns_name} presents client certificate "
                    f"{gw.backend_client_certificate} to its backends "
                    "(spec.tls.backend.clientCertificateRef), which meshclient cannot present")
        return None

    def parent_info(self, kind: str, namespace: str, name: str, section: str | None
                    ) -> ParentInfo:
        """One ParentInfo per parent in a compile (thousands of routes share a listener)."""
        key = (kind, namespace, name, section)
        found = self._parents.get(key)
        if found is None:
            found = self._parents[key] = ParentInfo(kind=kind, namespace=namespace, name=name,
                                                    section=section)
        return found



def hosts_overlap(a: Hosts, b: Hosts) -> bool:
    return any(intersect(x, y) is not False for x in a for y in b)


def reason_of(reason: str) -> str:
    # Route conditions know UnsupportedValue, not the generic "Invalid" of object errors.
    return st.UNSUPPORTED_VALUE if reason == "Invalid" else reason


def route_status(
    route: HTTPRoute | GRPCRoute,
    parent: str,
    accepted: st.Condition,
    problems: Iterable[str],
    dropped: Sequence[HTTPRouteRule | GRPCRouteRule],
    valid: Sequence[HTTPRouteRule | GRPCRouteRule],
) -> st.ObjectStatus:
    conds = [accepted]
    problems = list(dict.fromkeys(problems))
    if problems:
        reason = problems[0].split(":", 1)[0]
        if reason not in (
            st.REF_NOT_PERMITTED,
            st.INVALID_KIND,
            st.BACKEND_NOT_FOUND,
            st.UNSUPPORTED_PROTOCOL,
        ):
            reason = st.BACKEND_NOT_FOUND if reason.startswith("mirror") else "RefNotResolved"
            if problems[0].startswith("mirror "):
                reason = problems[0][len("mirror ") :].split(":", 1)[0]
        conds.append(
            st.Condition(
                type="ResolvedRefs", status="False", reason=reason, message="; ".join(problems)
            )
        )
    else:
        conds.append(_RESOLVED)
    if dropped and valid and accepted.status == "True":
        # SH: PartiallyInvalid is only ever set True, and says which rules were dropped.
        conds.append(
            st.Condition(
                type="PartiallyInvalid",
                status="True",
                reason=reason_of(dropped[0].errors[0].reason),
                message="Dropped Rule(s) "
                + ", ".join(str(r.index) for r in dropped)
                + ": "
                + "; ".join(str(e) for r in dropped for e in r.errors),
            )
        )
    return st.ObjectStatus(
        kind=route.kind,
        namespace=route.meta.namespace,
        name=route.meta.name,
        parent=parent,
        conditions=tuple(conds),
    )
