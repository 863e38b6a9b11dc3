"""Route attachment to Gateway listeners and to Services (SPEC-NOTES §1.3–1.6, §7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from meshclient.model import GATEWAY_GROUP, GRPCRoute, HTTPRoute, LabelSelector, ParentRef, Service
from meshclient.routing import _status as st
from meshclient.routing._hostnames import intersect
from meshclient.routing._listeners import EffectiveListener, GatewayListeners, namespace_labels
from meshclient.store import Snapshot

__all__ = ["GatewayAttachment", "ServiceAttachment", "attach_to_gateway", "attach_to_service"]

Route = HTTPRoute | GRPCRoute


@attrs.frozen(kw_only=True)
class GatewayAttachment:
    """The listeners one parentRef attached the route to, each with its hostnames."""

    listeners: tuple[tuple[EffectiveListener, tuple[str | None, ...]], ...]
    condition: st.Condition


@attrs.frozen(kw_only=True)
class ServiceAttachment:
    service: Service | None
    ports: tuple[int, ...]
    producer: bool
    condition: st.Condition


def _rejected(reason: str, message: str) -> st.Condition:
    return st.Condition(type="Accepted", status="False", reason=reason, message=message)


_ACCEPTED = st.Condition(type="Accepted", status="True", reason=st.ACCEPTED)


def _allows_namespace(snapshot: Snapshot, el: EffectiveListener, route_ns: str) -> bool:
    allowed = el.listener.allowed_routes
    if allowed.namespaces_from == "All":
        return True
    if allowed.namespaces_from == "Same":
        # LS: for a ListenerSet's listener "Same" means the ListenerSet's namespace.
        return route_ns == el.owner_namespace
    selector = allowed.selector or LabelSelector()
    return selector.matches(namespace_labels(snapshot, route_ns))


def attach_to_gateway(
    snapshot: Snapshot,
    route: Route,
    ref: ParentRef,
    gateways: Mapping[tuple[str, str], GatewayListeners],
) -> GatewayAttachment | None:
    """Attach ``route`` through a Gateway or ListenerSet ``ref``; None for unknown parents."""
    if ref.group != GATEWAY_GROUP or ref.kind not in ("Gateway", "ListenerSet"):
        return None
    candidates: Sequence[EffectiveListener]
    if ref.kind == "Gateway":
        gl = gateways.get((ref.namespace, ref.name))
        if gl is None:
            return None
        candidates = gl.own
    else:
        found = None
        for gl in gateways.values():
            found = gl.by_listener_set.get((ref.namespace, ref.name))
            if found is not None:
                break
        if found is None:
            return None
        candidates = found
    selected = [
        el
        for el in candidates
        if (ref.section_name is None or el.listener.name == ref.section_name)
        and (ref.port is None or el.listener.port == ref.port)
    ]
    if not selected:
        return GatewayAttachment(
            listeners=(),
            condition=_rejected(
                st.NO_MATCHING_PARENT, f"no listener of {ref.describe()} matches sectionName/port"
            ),
        )
    admitting = [
        el
        for el in selected
        if route.kind in el.kinds and _allows_namespace(snapshot, el, route.meta.namespace)
    ]
    if not admitting:
        return GatewayAttachment(
            listeners=(),
            condition=_rejected(
                st.NOT_ALLOWED_BY_LISTENERS,
                f"no selected listener of {ref.describe()} admits {route.kind}s from namespace "
                f"{route.meta.namespace}",
            ),
        )
    attached: list[tuple[EffectiveListener, tuple[str | None, ...]]] = []
    for el in admitting:
        hostnames: list[str | None] = []
        for rh in route.hostnames or (None,):
            got = intersect(el.listener.hostname, rh)
            if got is not False:
                hostnames.append(got)  # type: ignore[arg-type]
        if hostnames:
            attached.append((el, tuple(dict.fromkeys(hostnames))))
    if not attached:
        return GatewayAttachment(
            listeners=(),
            condition=_rejected(
                st.NO_MATCHING_LISTENER_HOSTNAME,
                f"no hostname of the route intersects a listener of {ref.describe()}",
            ),
        )
    return GatewayAttachment(listeners=tuple(attached), condition=_ACCEPTED)


def attach_to_service(
    route: Route, ref: ParentRef, services: Mapping[tuple[str, str], Service]
) -> ServiceAttachment:
    """Attach a GAMMA route to the Service frontend ``ref`` names (G1294)."""
    svc = services.get((ref.namespace, ref.name))
    if svc is None:
        return ServiceAttachment(
            service=None,
            ports=(),
            producer=False,
            condition=_rejected(
                st.NO_MATCHING_PARENT, f"Service {ref.namespace}/{ref.name} not found"
            ),
        )
    if svc.headless or svc.type == "ExternalName":
        # G1294: headless and ExternalName Services have no frontend to attach to.
        return ServiceAttachment(
            service=svc,
            ports=(),
            producer=False,
            condition=_rejected(
                st.NO_MATCHING_PARENT,
                f"Service {ref.namespace}/{ref.name} is "
                f"{'headless' if svc.headless else 'ExternalName'} and has no frontend",
            ),
        )
    ports = tuple(
        p.port
        for p in svc.ports
        if (ref.port is None or p.port == ref.port)
        and (ref.section_name is None or p.name == ref.section_name)
    )
    if not ports:
        return ServiceAttachment(
            service=svc,
            ports=(),
            producer=False,
            condition=_rejected(
                st.NO_MATCHING_PARENT, f"{ref.describe()} selects no port of the Service"
            ),
        )
    return ServiceAttachment(
        service=svc,
        ports=ports,
        producer=route.meta.namespace == svc.meta.namespace,
        condition=_ACCEPTED,
    )
