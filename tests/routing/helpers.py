"""Builders for the Kubernetes dicts the routing spec tests feed to ``Mesh.from_objects``.

Every builder returns a plain dict shaped as a cluster (or a manifest) would hold it, with only
the fields a test names, so the parser's defaults are exercised as they are for real YAML.
Namespaces default to ``default``; Services get distinct cluster IPs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshclient import Mesh
from meshclient.routing import Condition, Decision, ObjectStatus

Obj = dict[str, Any]

GW_API = "gateway.networking.k8s.io/v1"
GW_GROUP = "gateway.networking.k8s.io"

_ips = itertools.count(1)


def _meta(name: str, namespace: str | None, created: str | None = None,
          labels: Mapping[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if created is not None:
        meta["creationTimestamp"] = created
    if labels:
        meta["labels"] = dict(labels)
    return meta


def ts(n: int) -> str:
    """A creationTimestamp ``n`` minutes after a fixed instant (smaller is older)."""
    return f"2026-01-01T00:{n:02d}:00Z"


# -- Gateways ---------------------------------------------------------------------------------


def listener(name: str = "http", port: int = 80, protocol: str = "HTTP",
             hostname: str | None = None, *, from_: str | None = None,
             selector: Mapping[str, Any] | None = None,
             kinds: Sequence[str | tuple[str, str]] | None = None) -> Obj:
    """A listener; ``from_``/``selector``/``kinds`` fill ``allowedRoutes`` only when given."""
    out: Obj = {"name": name, "port": port, "protocol": protocol}
    if hostname is not None:
        out["hostname"] = hostname
    allowed: Obj = {}
    if from_ is not None:
        ns: Obj = {"from": from_}
        if selector is not None:
            ns["selector"] = dict(selector)
        allowed["namespaces"] = ns
    if kinds is not None:
        allowed["kinds"] = [
            {"kind": k} if isinstance(k, str) else {"group": k[0], "kind": k[1]} for k in kinds
        ]
    if allowed:
        out["allowedRoutes"] = allowed
    return out


def gateway(name: str = "gw", namespace: str = "default", *,
            listeners: Sequence[Obj] | None = None, class_name: str = "internal",
            addresses: Sequence[str] = (), created: str | None = None,
            allowed_listeners: str | None = None) -> Obj:
    """A Gateway, by default with one HTTP listener ``http`` on port 80 and no hostname."""
    spec: Obj = {
        "gatewayClassName": class_name,
        "listeners": list(listeners) if listeners is not None else [listener()],
    }
    if addresses:
        spec["addresses"] = [{"type": "IPAddress", "value": a} for a in addresses]
    if allowed_listeners is not None:
        spec["allowedListeners"] = {"namespaces": {"from": allowed_listeners}}
    return {"apiVersion": GW_API, "kind": "Gateway", "metadata": _meta(name, namespace, created),
            "spec": spec}


def listener_set(name: str, namespace: str = "default", *, gateway_name: str = "gw",
                 gateway_namespace: str | None = None, listeners: Sequence[Obj],
                 created: str | None = None) -> Obj:
    parent: Obj = {"name": gateway_name}
    if gateway_namespace is not None:
        parent["namespace"] = gateway_namespace
    return {"apiVersion": GW_API, "kind": "ListenerSet",
            "metadata": _meta(name, namespace, created),
            "spec": {"parentRef": parent, "listeners": list(listeners)}}


# -- routes -----------------------------------------------------------------------------------


def parent(name: str = "gw", namespace: str | None = None, *, section: str | None = None,
           port: int | None = None, kind: str | None = None, group: str | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    if section is not None:
        out["sectionName"] = section
    if port is not None:
        out["port"] = port
    if kind is not None:
        out["kind"] = kind
    if group is not None:
        out["group"] = group
    return out


def service_parent(name: str, namespace: str | None = None, *, port: int | None = None,
                   section: str | None = None) -> Obj:
    """A GAMMA parentRef: group "" must be spelled out (SH)."""
    return parent(name, namespace, section=section, port=port, kind="Service", group="")


def backend(name: str = "svc", port: int | None = 8080, *, weight: int | None = None,
            namespace: str | None = None, kind: str | None = None, group: str | None = None,
            filters: Sequence[Obj] | None = None) -> Obj:
    out: Obj = {"name": name}
    if port is not None:
        out["port"] = port
    if weight is not None:
        out["weight"] = weight
    if namespace is not None:
        out["namespace"] = namespace
    if kind is not None:
        out["kind"] = kind
    if group is not None:
        out["group"] = group
    if filters is not None:
        out["filters"] = list(filters)
    return out


def match(path: str | None = None, type: str = "PathPrefix", *,
          headers: Mapping[str, str] | Sequence[Obj] | None = None,
          query: Mapping[str, str] | Sequence[Obj] | None = None,
          method: str | None = None) -> Obj:
    """One HTTPRouteMatch; ``headers``/``query`` dicts become Exact matchers."""
    out: Obj = {}
    if path is not None:
        out["path"] = {"type": type, "value": path}
    if headers is not None:
        out["headers"] = ([{"name": k, "value": v} for k, v in headers.items()]
                          if isinstance(headers, Mapping) else list(headers))
    if query is not None:
        out["queryParams"] = ([{"name": k, "value": v} for k, v in query.items()]
                              if isinstance(query, Mapping) else list(query))
    if method is not None:
        out["method"] = method
    return out


def rule(*matches: Obj, backends: Sequence[Obj] | None = None,
         filters: Sequence[Obj] | None = None, name: str | None = None,
         timeouts: Mapping[str, str] | None = None, retry: Mapping[str, Any] | None = None,
         **extra: Any) -> Obj:
    """A rule; ``backends`` defaults to one ``svc:8080`` (pass ``[]`` for none)."""
    out: Obj = {}
    if name is not None:
        out["name"] = name
    if matches:
        out["matches"] = list(matches)
    if filters is not None:
        out["filters"] = list(filters)
    out["backendRefs"] = [backend()] if backends is None else list(backends)
    if timeouts is not None:
        out["timeouts"] = dict(timeouts)
    if retry is not None:
        out["retry"] = dict(retry)
    out.update(extra)
    return out


def http_route(name: str = "r", namespace: str = "default", *,
               parents: Sequence[Obj] | None = None,
               hostnames: Sequence[str] | None = ("example.com",),
               rules: Sequence[Obj] | None = None, created: str | None = None,
               api_version: str = GW_API) -> Obj:
    """An HTTPRoute on Gateway ``gw`` for ``example.com``, one rule to ``svc:8080`` by default."""
    spec: Obj = {"parentRefs": list(parents) if parents is not None else [parent()]}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    spec["rules"] = list(rules) if rules is not None else [rule()]
    return {"apiVersion": api_version, "kind": "HTTPRoute",
            "metadata": _meta(name, namespace, created), "spec": spec}


def grpc_route(name: str = "g", namespace: str = "default", *,
               parents: Sequence[Obj] | None = None,
               hostnames: Sequence[str] | None = ("example.com",),
               created: str | None = None) -> Obj:
    spec: Obj = {"parentRefs": list(parents) if parents is not None else [parent()],
                 "rules": [{"backendRefs": [backend()]}]}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    return {"apiVersion": GW_API, "kind": "GRPCRoute",
            "metadata": _meta(name, namespace, created), "spec": spec}


# -- filters ----------------------------------------------------------------------------------


def header_filter(kind: str = "RequestHeaderModifier", *,
                  set: Mapping[str, str] | None = None, add: Mapping[str, str] | None = None,
                  remove: Sequence[str] | None = None) -> Obj:
    body: Obj = {}
    if set is not None:
        body["set"] = [{"name": k, "value": v} for k, v in set.items()]
    if add is not None:
        body["add"] = [{"name": k, "value": v} for k, v in add.items()]
    if remove is not None:
        body["remove"] = list(remove)
    field = kind[0].lower() + kind[1:]
    return {"type": kind, field: body}


def path_modifier(type: str, value: str) -> Obj:
    key = "replaceFullPath" if type == "ReplaceFullPath" else "replacePrefixMatch"
    return {"type": type, key: value}


def redirect(*, scheme: str | None = None, hostname: str | None = None,
             port: int | None = None, status: int | None = None,
             path: Obj | None = None) -> Obj:
    body: Obj = {}
    if scheme is not None:
        body["scheme"] = scheme
    if hostname is not None:
        body["hostname"] = hostname
    if port is not None:
        body["port"] = port
    if status is not None:
        body["statusCode"] = status
    if path is not None:
        body["path"] = path
    return {"type": "RequestRedirect", "requestRedirect": body}


def rewrite(*, hostname: str | None = None, path: Obj | None = None) -> Obj:
    body: Obj = {}
    if hostname is not None:
        body["hostname"] = hostname
    if path is not None:
        body["path"] = path
    return {"type": "URLRewrite", "urlRewrite": body}


def mirror(name: str = "shadow", port: int | None = 8080, *, namespace: str | None = None,
           percent: int | None = None, fraction: Mapping[str, int] | None = None,
           kind: str | None = None) -> Obj:
    body: Obj = {"backendRef": backend(name, port, namespace=namespace, kind=kind)}
    if percent is not None:
        body["percent"] = percent
    if fraction is not None:
        body["fraction"] = dict(fraction)
    return {"type": "RequestMirror", "requestMirror": body}


def cors(**fields: Any) -> Obj:
    """A CORS filter; keyword names are the API's (``allowOrigins=[...]``)."""
    return {"type": "CORS", "cors": fields}


def extension_ref(name: str = "strict", kind: str = "WAF", group: str = "example.com") -> Obj:
    return {"type": "ExtensionRef", "extensionRef": {"group": group, "kind": kind, "name": name}}


# -- core objects -----------------------------------------------------------------------------


def service(name: str = "svc", namespace: str = "default", *,
            ports: Iterable[tuple[str, int] | tuple[str, int, str]] = (("http", 8080),),
            cluster_ip: str | None = None, headless: bool = False, type: str | None = None,
            selector: Mapping[str, str] | None = None, session_affinity: str | None = None,
            external_name: str | None = None) -> Obj:
    """A Service; each port is (name, port) or (name, port, appProtocol)."""
    spec: Obj = {"ports": []}
    for p in ports:
        entry: Obj = {"name": p[0], "port": p[1], "targetPort": p[1]}
        if len(p) == 3:
            entry["appProtocol"] = p[2]
        spec["ports"].append(entry)
    if headless:
        spec["clusterIP"] = "None"
    elif type != "ExternalName":
        n = next(_ips)
        spec["clusterIP"] = cluster_ip or f"10.96.{n // 250}.{n % 250 + 1}"
    if type is not None:
        spec["type"] = type
    if selector is not None:
        spec["selector"] = dict(selector)
    if session_affinity is not None:
        spec["sessionAffinity"] = session_affinity
    if external_name is not None:
        spec["externalName"] = external_name
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace),
            "spec": spec}


def endpoint_slice(service_name: str, namespace: str = "default", *,
                   addresses: Sequence[str] = ("10.0.0.1",), ready: bool = True,
                   port_name: str = "http", port: int = 8080) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": _meta(f"{service_name}-abc", namespace,
                          labels={"kubernetes.io/service-name": service_name}),
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
        "ports": [{"name": port_name, "port": port}],
    }


def grant(namespace: str, *, from_: Sequence[tuple[str, str]] = (("HTTPRoute", "default"),),
          to: Sequence[tuple[str, str | None]] = (("Service", None),),
          name: str = "allow", api_version: str = "gateway.networking.k8s.io/v1beta1") -> Obj:
    """A ReferenceGrant in the target ``namespace``: from (kind, ns), to (kind, name|None)."""
    froms = [{"group": "" if kind == "Service" else GW_GROUP, "kind": kind, "namespace": ns}
             for kind, ns in from_]
    tos: list[Obj] = []
    for kind, target in to:
        entry: Obj = {"group": "" if kind in ("Service", "Secret", "ConfigMap") else GW_GROUP,
                      "kind": kind}
        if target is not None:
            entry["name"] = target
        tos.append(entry)
    return {"apiVersion": api_version, "kind": "ReferenceGrant",
            "metadata": _meta(name, namespace), "spec": {"from": froms, "to": tos}}


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, None,
                                                                          labels=labels)}


def config_map(name: str, namespace: str = "default", data: Mapping[str, str] | None = None,
               ) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace),
            "data": dict(data or {})}


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def tls_policy(name: str = "tls", namespace: str = "default", *,
               targets: Sequence[tuple[str, str | None] | Obj] = (("svc", None),),
               hostname: str = "svc.example.com", ca_refs: Sequence[Obj] | None = None,
               well_known: str | None = None, sans: Sequence[Obj] | None = None,
               created: str | None = None, api_version: str = GW_API) -> Obj:
    """A BackendTLSPolicy; targets are (Service name, sectionName|None) or raw dicts."""
    refs: list[Obj] = []
    for t in targets:
        if isinstance(t, dict):
            refs.append(t)
            continue
        ref: Obj = {"group": "", "kind": "Service", "name": t[0]}
        if t[1] is not None:
            ref["sectionName"] = t[1]
        refs.append(ref)
    validation: Obj = {"hostname": hostname}
    if ca_refs is not None:
        validation["caCertificateRefs"] = list(ca_refs)
    if well_known is not None:
        validation["wellKnownCACertificates"] = well_known
    if sans is not None:
        validation["subjectAltNames"] = list(sans)
    return {"apiVersion": api_version, "kind": "BackendTLSPolicy",
            "metadata": _meta(name, namespace, created),
            "spec": {"targetRefs": refs, "validation": validation}}


def ca_ref(name: str = "ca", kind: str = "ConfigMap", group: str = "") -> Obj:
    return {"group": group, "kind": kind, "name": name}


# -- running and reading ----------------------------------------------------------------------


def mesh(*objects: Obj, **options: Any) -> Mesh:
    """A Mesh from these dicts (options as for ``Mesh``: namespace, gateways, ...)."""
    return Mesh.from_objects(list(objects), **options)


def world(*objects: Obj, services: Sequence[str] = ("svc", "svc2", "shadow"),
          **options: Any) -> Mesh:
    """Gateway ``default/gw`` (HTTP :80, any host), Services ``services`` and ``objects``."""
    return mesh(gateway(), *(service(s) for s in services), *objects, **options)


def get(m: Mesh, url: str, headers: Mapping[str, str | Sequence[str]] | None = None,
        method: str = "GET") -> Decision:
    return m.resolve(method, url, headers)


def statuses(m: Mesh, kind: str, name: str, namespace: str = "default") -> list[ObjectStatus]:
    return [s for s in m.statuses()
            if s.kind == kind and s.name == name and s.namespace == namespace]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""``parent=ANY``: any parent (the default); ``parent=None``: the object's own entry."""


def status(m: Mesh, kind: str, name: str, namespace: str = "default",
           parent: str | None = ANY) -> ObjectStatus:
    """The one status entry of an object (for one parent when ``parent`` is given)."""
    found = [s for s in statuses(m, kind, name, namespace)
             if parent is ANY or s.parent == parent]
    assert len(found) == 1, f"expected one status of {kind} {namespace}/{name}: {found}"
    return found[0]


def condition(m: Mesh, kind: str, name: str, type: str, namespace: str = "default",
              parent: str | None = ANY) -> Condition:
    got = status(m, kind, name, namespace, parent).condition(type)
    assert got is not None, f"{kind} {namespace}/{name} has no {type} condition"
    return got


def route_condition(m: Mesh, name: str, type: str = "Accepted", namespace: str = "default",
                    parent: str | None = ANY) -> Condition:
    return condition(m, "HTTPRoute", name, type, namespace, parent)


def reason(m: Mesh, name: str, type: str = "Accepted", namespace: str = "default",
           parent: str | None = ANY) -> tuple[str, str]:
    """(status, reason) of a route's condition, the pair tests compare."""
    c = route_condition(m, name, type, namespace, parent)
    return (c.status, c.reason)


def listener_status(m: Mesh, gateway_name: str, listener_name: str,
                    namespace: str = "default", kind: str = "Gateway") -> ObjectStatus:
    return status(m, kind, gateway_name, namespace, parent=f"listener {listener_name}")


def backend_names(d: Decision) -> list[str]:
    return [b.name for b in d.backends]


def header_value(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n == name]
