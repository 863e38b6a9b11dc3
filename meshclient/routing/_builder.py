"""Shared state and helpers of one compile: options, the builder, route status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from meshclient.model import (
    GRPCRoute,
    GRPCRouteRule,
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    ParentRef,
)
from meshclient.routing import _status as st
from meshclient.routing._backends import Resolver
from meshclient.routing._hostnames import intersect
from meshclient.routing._listeners import EffectiveListener, GatewayListeners
from meshclient.routing._table import Entry
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

    def listener_key(self, el: EffectiveListener) -> tuple[str, ...]:
        return (
            el.gateway.meta.namespace,
            el.gateway.meta.name,
            el.owner_kind,
            el.owner_namespace,
            el.owner_name,
            el.listener.name,
        )


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
        conds.append(st.Condition(type="ResolvedRefs", status="True", reason=st.RESOLVED_REFS))
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
