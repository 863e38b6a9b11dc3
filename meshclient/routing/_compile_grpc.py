"""GRPCRoutes: attachment, conflicts with HTTPRoutes, compiled gRPC entries (§1.6, §6, §7.3)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from meshclient.model import GRPCRoute, GRPCRouteRule, ParentRef
from meshclient.routing import _status as st
from meshclient.routing._attach import (
    GatewayAttachment,
    ServiceAttachment,
    attach_to_gateway,
    attach_to_service,
)
from meshclient.routing._builder import (
    Builder,
    GatewayMap,
    GrpcClaims,
    reason_of,
    route_order,
    route_status,
)
from meshclient.routing._decision import ParentInfo
from meshclient.routing._grpc import GrpcEntry, grpc_entry

__all__ = ["compile_grpc_routes", "grpc_claims", "settle_grpc_losers"]


def grpc_claims(b: Builder, routes: Iterable[GRPCRoute], gateways: GatewayMap) -> GrpcClaims:
    """Attach GRPCRoutes: for status, for HTTPRoute/GRPCRoute conflicts (§1.6, §7.3), and to
    compile their rules once every HTTPRoute has claimed its listeners."""
    claims: GrpcClaims = {}
    for route in routes:
        for ref in route.parent_refs:
            attachment: object
            if ref.is_service:
                att = attach_to_service(route, ref, b.resolver.services)
                if att.service is not None:
                    for port in att.ports:
                        b.grpc_ports.add((att.service.meta.namespace, att.service.meta.name, port))
                cond, attachment = att.condition, att
            else:
                gatt = attach_to_gateway(b.snapshot, route, ref, gateways)
                if gatt is None:
                    if ref.kind in ("Gateway", "ListenerSet"):
                        cond = st.Condition(type="Accepted", status="False",
                                            reason=st.NO_MATCHING_PARENT,
                                            message=f"{ref.kind} {ref.namespace}/{ref.name} "
                                            "not found")
                        b.statuses.append(route_status(route, ref.describe(), cond, (), (), ()))
                    continue
                for el, hosts in gatt.listeners:
                    claims.setdefault(el.key, []).append((route, hosts))
                cond, attachment = gatt.condition, gatt
                b.grpc_refs.append(
                    (len(b.statuses), route, tuple(el.key for el, _ in gatt.listeners))
                )
            b.grpc_pending.append((len(b.statuses), route, ref, attachment))
            b.statuses.append(route_status(route, ref.describe(), cond, (), (), ()))
    return claims


def settle_grpc_losers(b: Builder) -> None:
    """GRPCRoutes beaten by an older HTTPRoute on every listener are not accepted (GR)."""
    for index, route, lkeys in b.grpc_refs:
        if not lkeys or not all((route.meta.ns_name, k) in b.grpc_lost for k in lkeys):
            continue
        old = b.statuses[index]
        lost = st.Condition(
            type="Accepted",
            status="False",
            reason=st.CONFLICTED,
            message="an older HTTPRoute holds these hostnames on every listener",
        )
        b.statuses[index] = attrs.evolve(old, conditions=(lost, *old.conditions[1:]))


def compile_grpc_routes(b: Builder) -> None:
    """Compile the rules of every attached GRPCRoute into gRPC entries, and finish statuses."""
    for index, route, ref, attachment in b.grpc_pending:
        status = b.statuses[index]
        accepted = status.conditions[0]
        valid = [r for r in route.rules if not r.errors]
        dropped = [r for r in route.rules if r.errors]
        if route.errors:
            accepted = st.Condition(type="Accepted", status="False",
                                    reason=reason_of(route.errors[0].reason),
                                    message=str(route.errors[0]))
        elif not valid:
            first = dropped[0].errors[0]
            accepted = st.Condition(type="Accepted", status="False",
                                    reason=reason_of(first.reason),
                                    message=f"every rule is invalid; first: {first}")
        problems: list[str] = []
        if accepted.status == "True":
            if isinstance(attachment, ServiceAttachment):
                problems = _compile_mesh(b, route, ref, attachment, valid)
            elif isinstance(attachment, GatewayAttachment):
                problems = _compile_listeners(b, route, ref, attachment, valid)
        b.statuses[index] = route_status(route, ref.describe(), accepted, problems, dropped,
                                         valid)


def _entries(b: Builder, route: GRPCRoute, rules: list[GRPCRouteRule], parent: ParentInfo, *,
             mesh: bool, gateway_address: str | None, problems: list[str],
             parent_unsupported: str | None = None) -> list[GrpcEntry]:
    out = []
    for rule in rules:
        target = b.rule_target(route, rule, parent, mesh=mesh,
                              gateway_address=gateway_address,
                              parent_unsupported=parent_unsupported)
        problems.extend(target.problems)
        for mi, match in enumerate(rule.matches):
            out.append(grpc_entry(target, match, (*route_order(route), rule.index, mi)))
    return out


def _compile_listeners(b: Builder, route: GRPCRoute, ref: ParentRef, att: GatewayAttachment,
                       rules: list[GRPCRouteRule]) -> list[str]:
    problems: list[str] = []
    for el, hosts in att.listeners:
        lkey = el.key
        gw = el.gateway
        if (route.meta.ns_name, lkey) in b.grpc_lost or not b.options.selects(
            gw.meta.namespace, gw.meta.name, gw.gateway_class
        ):
            continue
        parent = ParentInfo(kind=ref.kind, namespace=ref.namespace, name=ref.name,
                            section=el.listener.name)
        entries = _entries(b, route, rules, parent, mesh=False,
                           gateway_address=gw.addresses[0] if gw.addresses else None,
                           problems=problems, parent_unsupported=b.gateway_unsupported(gw))
        by_host = b.grpc_listener_entries.setdefault(lkey, {})
        for host in hosts:
            by_host.setdefault(host, []).extend(entries)
    return problems


def _compile_mesh(b: Builder, route: GRPCRoute, ref: ParentRef, att: ServiceAttachment,
                  rules: list[GRPCRouteRule]) -> list[str]:
    problems: list[str] = []
    svc = att.service
    if svc is None:
        return problems
    parent = ParentInfo(kind="Service", namespace=svc.meta.namespace, name=svc.meta.name,
                        section=ref.section_name)
    entries = _entries(b, route, rules, parent, mesh=True, gateway_address=None,
                       problems=problems)
    for port in att.ports:
        producers, consumers = b.grpc_mesh_entries.setdefault(
            (svc.meta.namespace, svc.meta.name, port), ([], {}))
        bucket = producers if att.producer else consumers.setdefault(route.meta.namespace, [])
        bucket.extend(entries)
    return problems
