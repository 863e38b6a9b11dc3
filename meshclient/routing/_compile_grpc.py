"""GRPCRoutes: attachment, conflicts with HTTPRoutes, and compiled gRPC entries (§1.6, §6, §7.3)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from meshclient.model import GRPCRoute
from meshclient.routing import _status as st
from meshclient.routing._attach import attach_to_gateway, attach_to_service
from meshclient.routing._builder import Builder, GatewayMap, GrpcClaims

__all__ = ["grpc_claims", "settle_grpc_losers"]


def grpc_claims(b: Builder, routes: Iterable[GRPCRoute], gateways: GatewayMap) -> GrpcClaims:
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
                b.grpc_refs.append(
                    (len(b.statuses), route, tuple(b.listener_key(el) for el, _ in gatt.listeners))
                )
            b.statuses.append(
                st.ObjectStatus(
                    kind="GRPCRoute",
                    namespace=route.meta.namespace,
                    name=route.meta.name,
                    parent=ref.describe(),
                    conditions=(
                        cond,
                        st.Condition(
                            type="ResolvedRefs",
                            status="True",
                            reason=st.RESOLVED_REFS,
                            message="GRPCRoute requests are sent through the gateway: gRPC routing "
                            "is not implemented by meshclient yet",
                        ),
                    ),
                )
            )
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
