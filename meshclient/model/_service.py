"""Service and EndpointSlice (core/v1, discovery.k8s.io/v1): the backends routes point at."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from meshclient.errors import ConfigError
from meshclient.model._meta import Meta, parse_meta, spec_of
from meshclient.model._reader import INVALID, Reader

__all__ = ["Endpoint", "EndpointPort", "EndpointSlice", "Service", "ServicePort"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@attrs.frozen(kw_only=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str | None = None
    """A number, a named container port, or None (same as ``port``)."""
    protocol: str = "TCP"
    app_protocol: str | None = None


@attrs.frozen(kw_only=True)
class Service:
    meta: Meta
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    """The frontend addresses; empty for headless Services (clusterIP: None)."""
    headless: bool = False
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] | None = None
    session_affinity: str = "None"
    traffic_distribution: str | None = None
    external_name: str | None = None
    errors: tuple[ConfigError, ...] = ()

    def port(self, number: int) -> ServicePort | None:
        for p in self.ports:
            if p.port == number:
                return p
        return None

    def port_named(self, name: str) -> ServicePort | None:
        for p in self.ports:
            if p.name == name:
                return p
        return None


@attrs.frozen(kw_only=True)
class EndpointPort:
    name: str
    port: int | None
    protocol: str = "TCP"
    app_protocol: str | None = None


@attrs.frozen(kw_only=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    """``conditions.ready``; unknown (absent) counts as ready, as kube-proxy does."""
    serving: bool = True
    terminating: bool = False
    hostname: str | None = None
    node_name: str | None = None
    zone: str | None = None
    hint_zones: tuple[str, ...] = ()
    hint_nodes: tuple[str, ...] = ()
    target: str | None = None
    """``targetRef`` as ``Kind ns/name`` (usually the Pod), for logs."""


@attrs.frozen(kw_only=True)
class EndpointSlice:
    meta: Meta
    service_name: str
    """From the ``kubernetes.io/service-name`` label; "" when the slice has none."""
    address_type: str = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    errors: tuple[ConfigError, ...] = ()


def parse_service(raw: Mapping[str, object], default_namespace: str) -> Service:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "Service", default_namespace, errors)
    spec = spec_of(raw, "Service", meta, errors)
    ports: list[ServicePort] = []
    for p in spec.children("ports"):
        target: int | str | None = None
        tp = p.get("targetPort")
        if isinstance(tp, bool) or (tp is not None and not isinstance(tp, int | str)):
            p.error("targetPort", tp, "must be a port number or a port name", INVALID)
        elif isinstance(tp, str) and tp.isdigit():
            target = int(tp)
        elif tp is not None:
            target = tp
        number = p.int("port", minimum=1, maximum=65535, required=True)
        if number is None:
            continue
        ports.append(
            ServicePort(
                name=p.str("name"),
                port=number,
                target_port=target,
                protocol=p.str("protocol", "TCP"),
                app_protocol=p.opt_str("appProtocol"),
            )
        )
    cluster_ip = spec.str("clusterIP")
    ips = spec.strings("clusterIPs") or ([cluster_ip] if cluster_ip else [])
    headless = cluster_ip == "None" or "None" in ips
    selector = spec.mapping_of_str("selector") if spec.has("selector") else None
    ext = spec.opt_str("externalName")
    return Service(
        meta=meta,
        type=spec.str("type", "ClusterIP"),
        cluster_ips=() if headless else tuple(ips),
        headless=headless,
        ports=tuple(ports),
        selector=selector,
        session_affinity=spec.str("sessionAffinity", "None"),
        traffic_distribution=spec.opt_str("trafficDistribution"),
        external_name=ext,
        errors=tuple(errors),
    )


def parse_endpoint_slice(raw: Mapping[str, object], default_namespace: str) -> EndpointSlice:
    errors: list[ConfigError] = []
    meta = parse_meta(raw, "EndpointSlice", default_namespace, errors)
    # EndpointSlice has no spec: its fields sit at the top level.
    top = Reader(
        raw, kind="EndpointSlice", namespace=meta.namespace, name=meta.name, path="",
        errors=errors,
    )
    address_type = top.str("addressType", "IPv4")
    endpoints: list[Endpoint] = []
    for e in top.children("endpoints"):
        addresses = tuple(e.strings("addresses"))
        if not addresses:
            e.missing("addresses")
            continue
        cond = e.child("conditions")
        ready = serving = True
        terminating = False
        if cond is not None:
            # Absent ready/serving mean "unknown", which consumers treat as ready (KEP-1672).
            ready = cond.bool("ready", True)
            serving = cond.bool("serving", ready)
            terminating = cond.bool("terminating", False)
        hints = e.child("hints")
        hint_zones: tuple[str, ...] = ()
        hint_nodes: tuple[str, ...] = ()
        if hints is not None:
            hint_zones = tuple(z.str("name") for z in hints.children("forZones"))
            hint_nodes = tuple(n.str("name") for n in hints.children("forNodes"))
        target = None
        ref = e.child("targetRef")
        if ref is not None:
            target = f"{ref.str('kind', 'Pod')} {ref.str('namespace', meta.namespace)}/" + (
                ref.str("name")
            )
        endpoints.append(
            Endpoint(
                addresses=addresses,
                ready=ready,
                serving=serving,
                terminating=terminating,
                hostname=e.opt_str("hostname"),
                node_name=e.opt_str("nodeName"),
                zone=e.opt_str("zone"),
                hint_zones=hint_zones,
                hint_nodes=hint_nodes,
                target=target,
            )
        )
    ports = tuple(
        EndpointPort(
            name=p.str("name"),
            port=p.int("port", minimum=1, maximum=65535),
            protocol=p.str("protocol", "TCP"),
            app_protocol=p.opt_str("appProtocol"),
        )
        for p in top.children("ports")
    )
    return EndpointSlice(
        meta=meta,
        service_name=meta.labels.get(SERVICE_NAME_LABEL, ""),
        address_type=address_type,
        endpoints=tuple(endpoints),
        ports=ports,
        errors=tuple(errors),
    )
