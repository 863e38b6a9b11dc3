"""HTTPRoutes: attach each parentRef, compile valid rules into listener and Service entries."""

from __future__ import annotations

from meshclient.model import HTTPRoute, HTTPRouteRule, ParentRef
from meshclient.routing import _status as st
from meshclient.routing._attach import attach_to_gateway, attach_to_service
from meshclient.routing._builder import (
    Builder,
    GatewayMap,
    GrpcClaims,
    hosts_overlap,
    reason_of,
    route_order,
    route_status,
)
from meshclient.routing._decision import (
    ParentInfo,
)

__all__ = ["compile_http_route"]


def compile_http_route(
    b: Builder, route: HTTPRoute, gateways: GatewayMap, grpc_claims: GrpcClaims
) -> None:
    """Attach and compile one HTTPRoute, or replay it when it and its world are unchanged."""
    start = len(b.statuses)
    found = b.reusable_routes.get(id(route))
    if found is not None and found[0] is route:
        b.replay(found[1])
        b.routes[id(route)] = found
    else:
        b.log = []
        try:
            _compile_http_route(b, route, gateways, grpc_claims)
            b.routes[id(route)] = (route, b.log)
        finally:
            b.log = None
    b.route_statuses[route.meta.namespace, route.meta.name] = tuple(b.statuses[start:])


def _compile_http_route(
    b: Builder, route: HTTPRoute, gateways: GatewayMap, grpc_claims: GrpcClaims
) -> None:
    valid_rules = [r for r in route.rules if not r.errors]
    dropped = [r for r in route.rules if r.errors]
    for ref in route.parent_refs:
        parent_desc = ref.describe()
        if route.errors:
            _rejected(b, route, parent_desc, reason_of(route.errors[0].reason),
                      str(route.errors[0]), dropped, valid_rules)
            continue
        if not valid_rules:
            first = dropped[0].errors[0]
            _rejected(b, route, parent_desc, reason_of(first.reason),
                      f"every rule is invalid; first: {first}", dropped, valid_rules)
            continue
        if ref.is_service:
            _attach_mesh(b, route, ref, valid_rules, dropped)
            continue
        att = attach_to_gateway(b.snapshot, route, ref, gateways)
        if att is None:
            if ref.kind in ("Gateway", "ListenerSet"):
                _rejected(b, route, parent_desc, st.NO_MATCHING_PARENT,
                          f"{ref.kind} {ref.namespace}/{ref.name} not found", dropped,
                          valid_rules)
            continue
        problems: list[str] = []
        condition = att.condition
        kept = 0
        order = route_order(route)
        for el, hosts in att.listeners:
            lkey = el.key
            older = [
                g
                for g, ghosts in grpc_claims.get(lkey, ())
                if route_order(g) < order and hosts_overlap(hosts, ghosts)
            ] if grpc_claims else None
            if older:
                # GR: HTTPRoute and GRPCRoute on one listener with overlapping hostnames:
                # the older route is accepted, the other is not.
                continue
            kept += 1
            if grpc_claims:
                b.add_grpc_lost(
                    (g.meta.ns_name, lkey)
                    for g, ghosts in grpc_claims.get(lkey, ())
                    if route_order(route) < route_order(g) and hosts_overlap(hosts, ghosts)
                )
            gw = el.gateway
            if not b.options.selects(gw.meta.namespace, gw.meta.name, gw.gateway_class):
                continue
            parent = b.parent_info(ref.kind, ref.namespace, ref.name, el.listener.name)
            address = gw.addresses[0] if gw.addresses else None
            unsupported = b.gateway_unsupported(gw)
            for rule in valid_rules:
                target = b.rule_target(
                    route, rule, parent, mesh=False, gateway_address=address,
                    parent_unsupported=unsupported,
                )
                if target.problems:
                    problems.extend(target.problems)
                for mi, match in enumerate(rule.matches):
                    entry = b.entry(target, match, (*order, rule.index, mi), mi)
                    for host in hosts:
                        b.add_listener_entry(lkey, el, host, match, entry)
        if att.listeners and not kept:
            condition = st.Condition(
                type="Accepted",
                status="False",
                reason=st.CONFLICTED,
                message="an older GRPCRoute holds these hostnames on every listener",
            )
        if not att.listeners:
            problems = _static_problems(b, route, valid_rules, mesh=False)
        b.add_status(
            route_status(route, parent_desc, condition, problems, dropped, valid_rules)
        )


def _rejected(b: Builder, route: HTTPRoute, parent: str, reason: str, message: str,
              dropped: list[HTTPRouteRule], valid: list[HTTPRouteRule]) -> None:
    accepted = st.Condition(type="Accepted", status="False", reason=reason, message=message)
    b.add_status(route_status(route, parent, accepted, (), dropped, valid))


def _static_problems(
    b: Builder, route: HTTPRoute, rules: list[HTTPRouteRule], *, mesh: bool
) -> list[str]:
    parent = ParentInfo(kind="Gateway", namespace="", name="")
    out: list[str] = []
    for rule in rules:
        out.extend(
            b.rule_target(route, rule, parent, mesh=mesh, gateway_address=None).problems
        )
    return out


def _attach_mesh(
    b: Builder,
    route: HTTPRoute,
    ref: ParentRef,
    valid_rules: list[HTTPRouteRule],
    dropped: list[HTTPRouteRule],
) -> None:
    att = attach_to_service(route, ref, b.resolver.services)
    problems: list[str] = []
    condition = att.condition
    if att.service is not None and att.ports:
        svc = att.service
        parent = ParentInfo(
            kind="Service",
            namespace=svc.meta.namespace,
            name=svc.meta.name,
            section=ref.section_name,
        )
        conflicted = [
            p for p in att.ports if (svc.meta.namespace, svc.meta.name, p) in b.grpc_ports
        ]
        if conflicted and len(conflicted) == len(att.ports):
            # G1294: GRPCRoute > HTTPRoute on one Service port; the loser is Conflicted.
            condition = st.Condition(
                type="Accepted",
                status="False",
                reason=st.CONFLICTED,
                message=f"GRPCRoutes attach to port(s) {conflicted}",
            )
        for port in att.ports:
            if port in conflicted:
                continue
            key = (svc.meta.namespace, svc.meta.name, port)
            consumer = None if att.producer else route.meta.namespace
            for rule in valid_rules:
                target = b.rule_target(
                    route, rule, parent, mesh=True, gateway_address=None
                )
                problems.extend(target.problems)
                for mi, match in enumerate(rule.matches):
                    entry = b.entry(target, match, (*route_order(route), rule.index, mi), mi)
                    b.add_mesh_entry(key, consumer, match, entry)
    b.add_status(
        route_status(route, ref.describe(), condition, problems, dropped, valid_rules)
    )
