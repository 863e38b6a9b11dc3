"""GatewayClass, Gateway and ListenerSet (gateway.networking.k8s.io v1, v1beta1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from meshclient.errors import ConfigError
from meshclient.model._meta import GATEWAY_GROUP, LabelSelector, Meta, parse_meta, spec_of
from meshclient.model._names import hostname_problem
from meshclient.model._reader import INVALID, UNSUPPORTED_VALUE, Reader

__all__ = [
    "AllowedRoutes",
    "Gateway",
    "GatewayClass",
    "Listener",
    "ListenerSet",
    "RouteGroupKind",
]

PROTOCOLS: Final = frozenset({"HTTP", "HTTPS", "TLS", "TCP", "UDP"})


@attrs.frozen(kw_only=True)
class RouteGroupKind:
    group: str = GATEWAY_GROUP
    kind: str


@attrs.frozen(kw_only=True)
class AllowedRoutes:
    namespaces_from: str = "Same"  # Same | All | Selector
    selector: LabelSelector | None = None
    kinds: tuple[RouteGroupKind, ...] = ()
    """Empty: the kinds the listener's protocol implies."""


@attrs.frozen(kw_only=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_routes: AllowedRoutes = AllowedRoutes()
    tls_mode: str | None = None
    index: int = 0
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class Gateway:
    meta: Meta
    gateway_class: str
    listeners: tuple[Listener, ...] = ()
    addresses: tuple[str, ...] = ()
    """``spec.addresses`` and ``status.addresses`` values: where the real gateway listens."""
    backend_client_certificate: str | None = None
    """``spec.tls.backend.clientCertificateRef`` as ``namespace/name``: the certificate the
    gateway presents to backends (GW, Ext·std)."""
    allowed_listeners_from: str = "None"
    allowed_listeners_selector: LabelSelector | None = None
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class GatewayClass:
    meta: Meta
    controller_name: str
    errors: tuple[ConfigError, ...] = ()


@attrs.frozen(kw_only=True)
class ListenerSet:
    meta: Meta
    parent_namespace: str
    parent_name: str
    listeners: tuple[Listener, ...] = ()
    errors: tuple[ConfigError, ...] = ()


def parse_gateway_class(raw: Mapping[str, object], default_namespace: str) -> GatewayClass:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "GatewayClass", "", errors, namespaced=False)
    spec = spec_of(raw, "GatewayClass", meta, errors)
    return GatewayClass(
        meta=meta, controller_name=spec.str("controllerName", required=True), errors=tuple(errors)
    )


def parse_gateway(raw: Mapping[str, object], default_namespace: str) -> Gateway:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "Gateway", default_namespace, errors)
    spec = spec_of(raw, "Gateway", meta, errors)
    listeners = tuple(
        _parse_listener(r, i) for i, r in enumerate(spec.children("listeners", max_items=64))
    )
    addresses = [a.str("value") for a in spec.children("addresses")]
    status = raw.get("status")
    if isinstance(status, Mapping):
        st = Reader(status, kind="Gateway", namespace=meta.namespace, name=meta.name,
                    path="status", errors=[])
        addresses += [a.str("value") for a in st.children("addresses")]
    allowed_from, allowed_selector = "None", None
    if (al := spec.child("allowedListeners")) is not None and (
        ns := al.child("namespaces")
    ) is not None:
        allowed_from = ns.str("from", "None")
        if allowed_from not in ("None", "Same", "All", "Selector"):
            ns.error("from", allowed_from, "is not None, Same, All or Selector", UNSUPPORTED_VALUE)
            allowed_from = "None"
        if allowed_from == "Selector" and (sel := ns.child("selector")) is not None:
            allowed_selector = LabelSelector.parse(sel)
    client_cert = None
    if (tls := spec.child("tls")) is not None and (backend := tls.child("backend")) is not None:
        ref = backend.child("clientCertificateRef")
        if ref is not None:
            name = ref.str("name", required=True)
            client_cert = f"{ref.str('namespace', meta.namespace) or meta.namespace}/{name}"
    return Gateway(
        meta=meta,
        backend_client_certificate=client_cert,
        gateway_class=spec.str("gatewayClassName", required=True),
        listeners=listeners,
        addresses=tuple(dict.fromkeys(a for a in addresses if a)),
        allowed_listeners_from=allowed_from,
        allowed_listeners_selector=allowed_selector,
        errors=tuple(errors),
    )


def parse_listener_set(raw: Mapping[str, object], default_namespace: str) -> ListenerSet:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "ListenerSet", default_namespace, errors)
    spec = spec_of(raw, "ListenerSet", meta, errors)
    parent = spec.child("parentRef")
    parent_ns, parent_name = meta.namespace, ""
    if parent is None:
        spec.missing("parentRef")
    else:
        parent_name = parent.str("name", required=True)
        parent_ns = parent.str("namespace", meta.namespace) or meta.namespace
        kind = parent.str("kind", "Gateway")
        if kind != "Gateway":
            parent.error("kind", kind, "must be Gateway", INVALID)
    listeners = tuple(
        _parse_listener(r, i) for i, r in enumerate(spec.children("listeners", max_items=64))
    )
    return ListenerSet(
        meta=meta, parent_namespace=parent_ns, parent_name=parent_name, listeners=listeners,
        errors=tuple(errors),
    )


def _parse_listener(r: Reader, index: int) -> Listener:
    errors: list[ConfigError] = []
    r = r.with_errors(errors)
    name = r.str("name", required=True)
    port = r.int("port", minimum=1, maximum=65535, required=True) or 0
    protocol = r.str("protocol", required=True)
    hostname = r.opt_str("hostname")
    if hostname is not None and (problem := hostname_problem(hostname)):
        r.error("hostname", hostname, problem, INVALID)
        hostname = None
    allowed = AllowedRoutes()
    if (ar := r.child("allowedRoutes")) is not None:
        allowed = _parse_allowed_routes(ar)
    tls_mode = None
    if (tls := r.child("tls")) is not None:
        tls_mode = tls.str("mode", "Terminate")
    elif protocol in ("HTTPS", "TLS"):
        tls_mode = "Terminate"
    return Listener(
        name=name, port=port, protocol=protocol, hostname=hostname, allowed_routes=allowed,
        tls_mode=tls_mode, index=index, errors=tuple(errors),
    )


def _parse_allowed_routes(r: Reader) -> AllowedRoutes:
    namespaces_from, selector = "Same", None
    if (ns := r.child("namespaces")) is not None:
        namespaces_from = ns.str("from", "Same")
        if namespaces_from not in ("Same", "All", "Selector"):
            ns.error("from", namespaces_from, "is not Same, All or Selector", UNSUPPORTED_VALUE)
            namespaces_from = "Same"
        if namespaces_from == "Selector":
            sel = ns.child("selector")
            if sel is None:
                ns.missing("selector")
                # A Selector without a selector must not admit every namespace.
                namespaces_from = "Same"
            else:
                selector = LabelSelector.parse(sel)
    kinds = tuple(
        RouteGroupKind(group=k.str("group", GATEWAY_GROUP), kind=k.str("kind", required=True))
        for k in r.children("kinds", max_items=8)
    )
    return AllowedRoutes(namespaces_from=namespaces_from, selector=selector, kinds=kinds)
